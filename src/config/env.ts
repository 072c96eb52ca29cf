// `${VAR}` and `${VAR:-default}` substitution in config string values.
// `$${` writes a literal `${`. A bare `$` elsewhere is left alone, so secrets
// containing `$` need no escaping unless they contain `${`.

export const ENV_CLUSTER_SECRET = 'OGEL_CLUSTER_SECRET';
export const ENV_TOKEN = 'OGEL_TOKEN';
/** Override storage.s3.accessKeyId and storage.s3.secretAccessKey (keys kept out of cluster.yml). */
export const ENV_S3_ACCESS_KEY_ID = 'OGEL_S3_ACCESS_KEY_ID';
export const ENV_S3_SECRET_ACCESS_KEY = 'OGEL_S3_SECRET_ACCESS_KEY';

export interface SubstitutionProblem {
  message: string;
  hint?: string;
}

export interface Substitution {
  value: string;
  /** Variables referenced (set or defaulted), in order. */
  vars: string[];
  problems: SubstitutionProblem[];
}

const REFERENCE = /^([A-Za-z_][A-Za-z0-9_]*)(?::-([\s\S]*))?$/;

/** True when `text` has anything substitute() would act on. */
export function hasReference(text: string): boolean {
  return text.includes('${');
}

export function substitute(text: string, env: NodeJS.ProcessEnv): Substitution {
  let value = '';
  const vars: string[] = [];
  const problems: SubstitutionProblem[] = [];
  let i = 0;
  while (i < text.length) {
    if (text.startsWith('$${', i)) {
      value += '${';
      i += 3;
      continue;
    }
    if (!text.startsWith('${', i)) {
      value += text[i];
      i += 1;
      continue;
    }
    const close = text.indexOf('}', i + 2);
    if (close < 0) {
      problems.push({ message: 'has a "${" with no closing "}"', hint: 'close it, or write $${ for a literal "${"' });
      value += text.slice(i);
      break;
    }
    const body = text.slice(i + 2, close);
    const m = REFERENCE.exec(body);
    if (m === null || m[2]?.includes('${')) {
      problems.push({
        message: `"\${${body}}" is not a valid variable reference`,
        hint: 'write ${NAME} or ${NAME:-default} (NAME: letters, digits, underscore; no nesting)',
      });
      i = close + 1;
      continue;
    }
    const name = m[1] as string;
    const fallback = m[2];
    const set = env[name];
    vars.push(name);
    if (fallback !== undefined) {
      value += set === undefined || set === '' ? fallback : set;
    } else if (set === undefined) {
      problems.push({
        message: `environment variable ${name} is not set`,
        hint: `export ${name}, or give a default: \${${name}:-value}`,
      });
    } else {
      value += set;
    }
    i = close + 1;
  }
  return { value, vars, problems };
}

/** Escapes a string so substitute() gives it back unchanged. */
export function escapeReferences(text: string): string {
  // A function replacer: in a replacement string, '$$' would mean one '$'.
  return text.replaceAll('${', () => '$${');
}
