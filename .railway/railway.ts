// Railway Infrastructure as Code for an OgelBase cluster: three services (n1, n2,
// n3), each built from this repository's Dockerfile, with one volume, private
// networking and a healthcheck. Preview with `railway config plan`, apply with
// `railway config apply` (docs/deploy-railway.md walks through it).
//
// The service definitions themselves are plain data in deploy/railway/services.ts,
// which test/railway-config.test.ts checks against cluster.yml and the Dockerfile.
//
// The Railway CLI evaluates this file with `node --experimental-strip-types`, so:
// relative imports spell out `.ts`, type-only imports use `import type`, and only
// erasable TypeScript is allowed (.railway/tsconfig.json enforces all three).

import { defineRailway, github, project, service, volume } from 'railway/iac';
import type { ResourceNode, SourceConfig, VariableValue } from 'railway/iac';
import { PROJECT_NAME, SERVICES } from '../deploy/railway/services.ts';

// Optional: the GitHub repository Railway builds from, as owner/name. Read from
// the environment of whoever runs `railway config plan|apply`, so a fork needs
// no edit here. Unset, the services declare no source (Railway IaC then leaves
// the source alone), and you deploy with `railway up --service n1` etc.
const repo = process.env['OGEL_RAILWAY_REPO'];
const branch = process.env['OGEL_RAILWAY_BRANCH'] ?? 'main';
const source: SourceConfig | undefined = repo ? github(repo, { branch }) : undefined;

export default defineRailway((ctx) => {
  const resources: ResourceNode[] = [];
  for (const s of SERVICES) {
    const data = volume(s.volume.name);
    const env: Record<string, string | VariableValue> = { ...s.env };
    // Secrets are environment shared variables (created once, see the docs);
    // each service references them as ${{shared.NAME}}. Some CLI versions call
    // this function with an empty context (railwayapp/cli#1117, #1137), so fall
    // back to the reference value ctx.shared.NAME stands for.
    for (const name of s.sharedEnv) env[name] = ctx.shared?.[name] ?? { type: 'sharedReference', name };
    const node = service(s.name, {
      ...(source ? { source } : {}),
      build: { builder: 'DOCKERFILE', dockerfilePath: 'Dockerfile' },
      start: s.start,
      healthcheck: s.healthcheck.path,
      healthcheckTimeout: s.healthcheck.timeoutSeconds,
      // A service with a volume cannot have replicas.
      replicas: 1,
      deploy: {
        restartPolicyType: s.restartPolicy,
        drainingSeconds: s.drainingSeconds,
      },
      tcp: s.tcpProxyPorts,
      env,
      volumeMounts: { [s.volume.mountPath]: data },
    });
    resources.push(node, data);
  }
  // Keep the linked project's name (when the CLI passes it): the file describes
  // the project's services, not its name.
  return project(ctx.projectName ?? PROJECT_NAME, { resources });
});
