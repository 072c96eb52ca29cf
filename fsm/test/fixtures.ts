// Frozen encodings. NEVER regenerate these bytes: they are what a daemon of that
// version wrote, and every later build must keep reading them. When the format
// changes, add new fixtures next to them instead.

import type { Command } from '../commands.js';
import { C } from './helpers.js';

/** The commands that produced SNAPSHOT_V1_BASE64 with version 1 (for reference, and for the check that version 1 still encodes them to the same bytes). */
export const SNAPSHOT_V1_COMMANDS: Command[] = [
  C.memberAdd('n2', 2, 1000),
  C.memberAdd('n1', 1, 1001),
  C.memberAdd('n3', 3, 1002),
  C.promote({ atMs: 2000 }),
  C.syncStandbys({ atMs: 2001 }),
  C.renew({ seq: 3, atMs: 2002 }),
  C.pgReport({ node: 'n2', atMs: 2003, lsn: { received: 'FFFFFFFF/FFFFFFFF', flushed: '16/B374D848', replayed: '0/3000100' } }),
  C.memberHealth({ id: 'n3', healthy: false, detail: 'disk 91% full', atMs: 2004 }),
  C.promote({
    node: 'n2',
    generation: 2,
    reason: 'switchover to n2',
    lsn: '16/B374D848',
    leaseDurationMs: 5000,
    automatic: false,
    atMs: 3000,
    lapsedLease: { holder: 'n1', renewalSeq: 3 },
  }),
  C.tenantCreate({ atMs: 4000 }),
  C.tenantCreate({ id: 't0', name: 'globex', database: 'globex', role: 'globex', atMs: 4001 }),
  C.tenantPlace({ node: 'n2', atMs: 4002 }),
  C.tenantDelete({ id: 't0', atMs: 4003 }),
  C.backupRecordV1({ atMs: 5000 }),
  C.backupUpdateV1({ atMs: 5001 }),
  C.walRecord({ atMs: 5002 }),
  C.computeCreate({ sourceSnapshot: 'b1', sourceLsn: '0/2000100', atMs: 6000 }),
  C.computeUpdate({ lastActivityMs: 6500, atMs: 6001 }),
  C.failoverBlocked({ reason: 'n1 and n3 unreachable', generation: 2, atMs: 7000 }),
  C.maintenance({ reason: 'upgrading n3', atMs: 8000 }),
];

/** encodeSnapshot after SNAPSHOT_V1_COMMANDS, written by snapshot format 1 (base64). */
export const SNAPSHOT_V1_BASE64 = [
  'iKdiYWNrdXBzkYqkYXRNc80TiKhjaGVja3N1bdlHc2hhMjU2OmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJh',
  'YmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWKmZW5kTHNuqTAvMjAwMDEwMKxmaW5pc2hlZEF0TXPNE4miaWSiYjGpb2Jq',
  'ZWN0S2V5s2JhY2t1cHMvYjEvYmFzZS50YXKpc2l6ZUJ5dGVzzgtTK4Coc3RhcnRMc26pMC8yMDAwMDI4pXN0YXRlqGNvbXBs',
  'ZXRlqHRpbWVsaW5lAahjb21wdXRlc5GJp2FkZHJlc3OtMTAuMC4xLjU6NTQzMqhicmFuY2hPZsCrY3JlYXRlZEF0TXPNF3Ci',
  'aWSiYzGubGFzdEFjdGl2aXR5TXPNGWSpc291cmNlTHNuqTAvMjAwMDEwMK5zb3VyY2VTbmFwc2hvdKJiMaVzdGF0ZadydW5u',
  'aW5nqHRlbmFudElkonQxpmZvcm1hdAGrbWFpbnRlbmFuY2WDpGF0TXPNH0CmcGF1c2Vkw6ZyZWFzb26sdXBncmFkaW5nIG4z',
  'p21lbWJlcnOThKlhZGRlZEF0TXPNA+mpYWRkcmVzc2VzhKNhcGmtMTAuMC4wLjE6ODA4MKhwb3N0Z3Jlc60xMC4wLjAuMTo1',
  'NDMypXByb3h5rTEwLjAuMC4xOjY0MzKkcmFmdK0xMC4wLjAuMTo3MDAwpmhlYWx0aIOmZGV0YWlstG5vIGhlYWx0aCByZXBv',
  'cnQgeWV0p2hlYWx0aHnCrHJlcG9ydGVkQXRNc80D6aJpZKJuMYSpYWRkZWRBdE1zzQPoqWFkZHJlc3Nlc4SjYXBprTEwLjAu',
  'MC4yOjgwODCocG9zdGdyZXOtMTAuMC4wLjI6NTQzMqVwcm94ea0xMC4wLjAuMjo2NDMypHJhZnStMTAuMC4wLjI6NzAwMKZo',
  'ZWFsdGiDpmRldGFpbLRubyBoZWFsdGggcmVwb3J0IHlldKdoZWFsdGh5wqxyZXBvcnRlZEF0TXPNA+iiaWSibjKEqWFkZGVk',
  'QXRNc80D6qlhZGRyZXNzZXOEo2Fwaa0xMC4wLjAuMzo4MDgwqHBvc3RncmVzrTEwLjAuMC4zOjU0MzKlcHJveHmtMTAuMC4w',
  'LjM6NjQzMqRyYWZ0rTEwLjAuMC4zOjcwMDCmaGVhbHRog6ZkZXRhaWytZGlzayA5MSUgZnVsbKdoZWFsdGh5wqxyZXBvcnRl',
  'ZEF0TXPNB9SiaWSibjOocG9zdGdyZXOIr2ZhaWxvdmVyQmxvY2tlZIKkYXRNc80bWKZyZWFzb261bjEgYW5kIG4zIHVucmVh',
  'Y2hhYmxlqmdlbmVyYXRpb24Cp2hpc3RvcnmShaRhdE1zzQfQqmdlbmVyYXRpb24Bo2xzbqkwLzMwMDAxNDikbm9kZaJuMaZy',
  'ZWFzb26pYm9vdHN0cmFwhaRhdE1zzQu4qmdlbmVyYXRpb24Co2xzbqsxNi9CMzc0RDg0OKRub2Rlom4ypnJlYXNvbrBzd2l0',
  'Y2hvdmVyIHRvIG4ypWxlYXNlhKpkdXJhdGlvbk1zzROIqmdlbmVyYXRpb24CpmhvbGRlcqJuMqpyZW5ld2FsU2VxAKVub2Rl',
  'c5OGo2xzboOnZmx1c2hlZKMwLzCocmVjZWl2ZWSjMC8wqHJlcGxheWVkozAvMKRub2Rlom4xrHJlcG9ydGVkQXRNc8CscmVw',
  'b3J0ZWRSb2xlpmFic2VudKRyb2xlpmZlbmNlZKh0aW1lbGluZQCGo2xzboOnZmx1c2hlZKsxNi9CMzc0RDg0OKhyZWNlaXZl',
  'ZLFGRkZGRkZGRi9GRkZGRkZGRqhyZXBsYXllZKkwLzMwMDAxMDCkbm9kZaJuMqxyZXBvcnRlZEF0TXPNB9OscmVwb3J0ZWRS',
  'b2xlp3N0YW5kYnmkcm9sZadwcmltYXJ5qHRpbWVsaW5lAYajbHNug6dmbHVzaGVkozAvMKhyZWNlaXZlZKMwLzCocmVwbGF5',
  'ZWSjMC8wpG5vZGWibjOscmVwb3J0ZWRBdE1zwKxyZXBvcnRlZFJvbGWmYWJzZW50pHJvbGWmYWJzZW50qHRpbWVsaW5lAKdw',
  'cmltYXJ5om4yqnN5bmNRdW9ydW0BrHN5bmNTdGFuZGJ5c5GibjOndGVuYW50c5KKq2NyZWF0ZWRBdE1zzQ+hqGRhdGFiYXNl',
  'pmdsb2JleKtkZWxldGVkQXRNc80Po6JpZKJ0MKZsaW1pdHOCrm1heENvbm5lY3Rpb25zFK9yYXRlTGltaXRQZXJTZWPNAfSk',
  'bmFtZaZnbG9iZXipcGxhY2VtZW50wKRyb2xlpmdsb2JleKVzY3JhbYSqaXRlcmF0aW9uc80QAKRzYWx0uEJ3Y0hCd2NIQndj',
  'SEJ3Y0hCd2NIQnc9PalzZXJ2ZXJLZXnZLEFnSUNBZ0lDQWdJQ0FnSUNBZ0lDQWdJQ0FnSUNBZ0lDQWdJQ0FnSUNBZ0k9qXN0',
  'b3JlZEtledksQVFFQkFRRUJBUUVCQVFFQkFRRUJBUUVCQVFFQkFRRUJBUUVCQVFFQkFRRT2lc3RhdGWnZGVsZXRlZIqrY3Jl',
  'YXRlZEF0TXPND6CoZGF0YWJhc2WnYWNtZV9kYqtkZWxldGVkQXRNc8CiaWSidDGmbGltaXRzgq5tYXhDb25uZWN0aW9ucxSv',
  'cmF0ZUxpbWl0UGVyU2VjzQH0pG5hbWWkYWNtZalwbGFjZW1lbnSibjKkcm9sZaphY21lX293bmVypXNjcmFthKppdGVyYXRp',
  'b25zzRAApHNhbHS4QndjSEJ3Y0hCd2NIQndjSEJ3Y0hCdz09qXNlcnZlcktledksQWdJQ0FnSUNBZ0lDQWdJQ0FnSUNBZ0lD',
  'QWdJQ0FnSUNBZ0lDQWdJQ0FnST2pc3RvcmVkS2V52SxBUUVCQVFFQkFRRUJBUUVCQVFFQkFRRUJBUUVCQVFFQkFRRUJBUUVC',
  'QVFFPaVzdGF0ZaZhY3RpdmWrd2FsU2VnbWVudHORiKRhdE1zzROKqGNoZWNrc3Vt2UdzaGEyNTY6Y2RjZGNkY2RjZGNkY2Rj',
  'ZGNkY2RjZGNkY2RjZGNkY2RjZGNkY2RjZGNkY2RjZGNkY2RjZGNkY2RjZGNkY2RjZKZlbmRMc26pMC8zMDAwMDAwpG5hbWW4',
  'MDAwMDAwMDEwMDAwMDAwMDAwMDAwMDAyqW9iamVjdEtlebx3YWwvMDAwMDAwMDEwMDAwMDAwMDAwMDAwMDAyqXNpemVCeXRl',
  'c84BAAAAqHN0YXJ0THNuqTAvMjAwMDAwMKh0aW1lbGluZQE=',
].join('');

/** encodeCommand of a version-1 pg.promote. */
export const PROMOTE_V1_HEX =
  '89a461744d73cb427977420dc7b000a96175746f6d61746963c3aa67656e65726174696f6e07af6c656173654475726174696f6e4d73cd09c4a36c736ea4312f4130a46e6f6465a26e32a6726561736f6eb86661696c6f7665723a206e3120756e726561636861626c65a474797065aa70672e70726f6d6f7465a17601';
// Written before pg.promote had lapsedLease: the bytes lack the field, and decoding
// them must give lapsedLease: null.
const { lapsedLease: _absentInV1, ...promoteAsWritten } = C.promote({
  node: 'n2',
  generation: 7,
  reason: 'failover: n1 unreachable',
  lsn: '1/A0',
  leaseDurationMs: 2500,
  automatic: true,
  atMs: 1_750_000_000_123,
});
export const PROMOTE_V1 = promoteAsWritten as unknown as Command;

/**
 * The commands that produced SNAPSHOT_V2_BASE64 with snapshot format 2: the
 * version-1 ones, then a switchover scheduled to n3 (a version-2 command).
 */
export const SNAPSHOT_V2_COMMANDS: Command[] = [
  ...SNAPSHOT_V1_COMMANDS,
  C.scheduleSwitchover({ to: 'n3', notBeforeMs: 1_763_719_200_000, generation: 2, atMs: 9000 }),
];

/** encodeSnapshot after SNAPSHOT_V2_COMMANDS, written by snapshot format 2 (base64). */
export const SNAPSHOT_V2_BASE64 = [
  'iKdiYWNrdXBzkYqkYXRNc80TiKhjaGVja3N1bdlHc2hhMjU2OmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJh',
  'YmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWKmZW5kTHNuqTAvMjAwMDEwMKxmaW5pc2hlZEF0TXPNE4miaWSiYjGpb2Jq',
  'ZWN0S2V5s2JhY2t1cHMvYjEvYmFzZS50YXKpc2l6ZUJ5dGVzzgtTK4Coc3RhcnRMc26pMC8yMDAwMDI4pXN0YXRlqGNvbXBs',
  'ZXRlqHRpbWVsaW5lAahjb21wdXRlc5GJp2FkZHJlc3OtMTAuMC4xLjU6NTQzMqhicmFuY2hPZsCrY3JlYXRlZEF0TXPNF3Ci',
  'aWSiYzGubGFzdEFjdGl2aXR5TXPNGWSpc291cmNlTHNuqTAvMjAwMDEwMK5zb3VyY2VTbmFwc2hvdKJiMaVzdGF0ZadydW5u',
  'aW5nqHRlbmFudElkonQxpmZvcm1hdAKrbWFpbnRlbmFuY2WDpGF0TXPNH0CmcGF1c2Vkw6ZyZWFzb26sdXBncmFkaW5nIG4z',
  'p21lbWJlcnOThKlhZGRlZEF0TXPNA+mpYWRkcmVzc2VzhKNhcGmtMTAuMC4wLjE6ODA4MKhwb3N0Z3Jlc60xMC4wLjAuMTo1',
  'NDMypXByb3h5rTEwLjAuMC4xOjY0MzKkcmFmdK0xMC4wLjAuMTo3MDAwpmhlYWx0aIOmZGV0YWlstG5vIGhlYWx0aCByZXBv',
  'cnQgeWV0p2hlYWx0aHnCrHJlcG9ydGVkQXRNc80D6aJpZKJuMYSpYWRkZWRBdE1zzQPoqWFkZHJlc3Nlc4SjYXBprTEwLjAu',
  'MC4yOjgwODCocG9zdGdyZXOtMTAuMC4wLjI6NTQzMqVwcm94ea0xMC4wLjAuMjo2NDMypHJhZnStMTAuMC4wLjI6NzAwMKZo',
  'ZWFsdGiDpmRldGFpbLRubyBoZWFsdGggcmVwb3J0IHlldKdoZWFsdGh5wqxyZXBvcnRlZEF0TXPNA+iiaWSibjKEqWFkZGVk',
  'QXRNc80D6qlhZGRyZXNzZXOEo2Fwaa0xMC4wLjAuMzo4MDgwqHBvc3RncmVzrTEwLjAuMC4zOjU0MzKlcHJveHmtMTAuMC4w',
  'LjM6NjQzMqRyYWZ0rTEwLjAuMC4zOjcwMDCmaGVhbHRog6ZkZXRhaWytZGlzayA5MSUgZnVsbKdoZWFsdGh5wqxyZXBvcnRl',
  'ZEF0TXPNB9SiaWSibjOocG9zdGdyZXOJr2ZhaWxvdmVyQmxvY2tlZIKkYXRNc80bWKZyZWFzb261bjEgYW5kIG4zIHVucmVh',
  'Y2hhYmxlqmdlbmVyYXRpb24Cp2hpc3RvcnmShaRhdE1zzQfQqmdlbmVyYXRpb24Bo2xzbqkwLzMwMDAxNDikbm9kZaJuMaZy',
  'ZWFzb26pYm9vdHN0cmFwhaRhdE1zzQu4qmdlbmVyYXRpb24Co2xzbqsxNi9CMzc0RDg0OKRub2Rlom4ypnJlYXNvbrBzd2l0',
  'Y2hvdmVyIHRvIG4ypWxlYXNlhKpkdXJhdGlvbk1zzROIqmdlbmVyYXRpb24CpmhvbGRlcqJuMqpyZW5ld2FsU2VxAKVub2Rl',
  'c5OGo2xzboOnZmx1c2hlZKMwLzCocmVjZWl2ZWSjMC8wqHJlcGxheWVkozAvMKRub2Rlom4xrHJlcG9ydGVkQXRNc8CscmVw',
  'b3J0ZWRSb2xlpmFic2VudKRyb2xlpmZlbmNlZKh0aW1lbGluZQCGo2xzboOnZmx1c2hlZKsxNi9CMzc0RDg0OKhyZWNlaXZl',
  'ZLFGRkZGRkZGRi9GRkZGRkZGRqhyZXBsYXllZKkwLzMwMDAxMDCkbm9kZaJuMqxyZXBvcnRlZEF0TXPNB9OscmVwb3J0ZWRS',
  'b2xlp3N0YW5kYnmkcm9sZadwcmltYXJ5qHRpbWVsaW5lAYajbHNug6dmbHVzaGVkozAvMKhyZWNlaXZlZKMwLzCocmVwbGF5',
  'ZWSjMC8wpG5vZGWibjOscmVwb3J0ZWRBdE1zwKxyZXBvcnRlZFJvbGWmYWJzZW50pHJvbGWmYWJzZW50qHRpbWVsaW5lAKdw',
  'cmltYXJ5om4ys3NjaGVkdWxlZFN3aXRjaG92ZXKDq25vdEJlZm9yZU1zy0J5ql2z0AAArXJlcXVlc3RlZEF0TXPNIyiidG+i',
  'bjOqc3luY1F1b3J1bQGsc3luY1N0YW5kYnlzkaJuM6d0ZW5hbnRzkoqrY3JlYXRlZEF0TXPND6GoZGF0YWJhc2WmZ2xvYmV4',
  'q2RlbGV0ZWRBdE1zzQ+jomlkonQwpmxpbWl0c4KubWF4Q29ubmVjdGlvbnMUr3JhdGVMaW1pdFBlclNlY80B9KRuYW1lpmds',
  'b2JleKlwbGFjZW1lbnTApHJvbGWmZ2xvYmV4pXNjcmFthKppdGVyYXRpb25zzRAApHNhbHS4QndjSEJ3Y0hCd2NIQndjSEJ3',
  'Y0hCdz09qXNlcnZlcktledksQWdJQ0FnSUNBZ0lDQWdJQ0FnSUNBZ0lDQWdJQ0FnSUNBZ0lDQWdJQ0FnST2pc3RvcmVkS2V5',
  '2SxBUUVCQVFFQkFRRUJBUUVCQVFFQkFRRUJBUUVCQVFFQkFRRUJBUUVCQVFFPaVzdGF0ZadkZWxldGVkiqtjcmVhdGVkQXRN',
  'c80PoKhkYXRhYmFzZadhY21lX2Riq2RlbGV0ZWRBdE1zwKJpZKJ0MaZsaW1pdHOCrm1heENvbm5lY3Rpb25zFK9yYXRlTGlt',
  'aXRQZXJTZWPNAfSkbmFtZaRhY21lqXBsYWNlbWVudKJuMqRyb2xlqmFjbWVfb3duZXKlc2NyYW2Eqml0ZXJhdGlvbnPNEACk',
  'c2FsdLhCd2NIQndjSEJ3Y0hCd2NIQndjSEJ3PT2pc2VydmVyS2V52SxBZ0lDQWdJQ0FnSUNBZ0lDQWdJQ0FnSUNBZ0lDQWdJ',
  'Q0FnSUNBZ0lDQWdJPalzdG9yZWRLZXnZLEFRRUJBUUVCQVFFQkFRRUJBUUVCQVFFQkFRRUJBUUVCQVFFQkFRRUJBUUU9pXN0',
  'YXRlpmFjdGl2Zat3YWxTZWdtZW50c5GIpGF0TXPNE4qoY2hlY2tzdW3ZR3NoYTI1NjpjZGNkY2RjZGNkY2RjZGNkY2RjZGNk',
  'Y2RjZGNkY2RjZGNkY2RjZGNkY2RjZGNkY2RjZGNkY2RjZGNkY2RjZGNkpmVuZExzbqkwLzMwMDAwMDCkbmFtZbgwMDAwMDAw',
  'MTAwMDAwMDAwMDAwMDAwMDKpb2JqZWN0S2V5vHdhbC8wMDAwMDAwMTAwMDAwMDAwMDAwMDAwMDKpc2l6ZUJ5dGVzzgEAAACo',
  'c3RhcnRMc26pMC8yMDAwMDAwqHRpbWVsaW5lAQ==',
].join('');

/** encodeCommand of a version-2 pg.scheduleSwitchover (to n2 at 2026-11-21T10:00:00Z, generation 3). */
export const SCHEDULE_SWITCHOVER_V2_HEX =
  '86a461744d73cb4279aa4b64500000aa67656e65726174696f6e03ab6e6f744265666f72654d73cb427a1fd8c6900000a2746fa26e32a474797065b570672e7363686564756c655377697463686f766572a17602';
export const SCHEDULE_SWITCHOVER_V2: Command = {
  v: 2,
  type: 'pg.scheduleSwitchover',
  to: 'n2',
  notBeforeMs: Date.UTC(2026, 10, 21, 10),
  generation: 3,
  atMs: 1_763_700_000_000,
};

/**
 * The commands that produced SNAPSHOT_V3_BASE64 with snapshot format 3: the
 * version-2 ones, then t1's limits set with a pool size (a version-3 command).
 */
export const SNAPSHOT_V3_COMMANDS: Command[] = [
  ...SNAPSHOT_V2_COMMANDS,
  C.tenantSetLimitsV3({ id: 't1', limits: { maxConnections: 30, rateLimitPerSec: 500, poolSize: 8 }, atMs: 10_000 }),
];

/** encodeSnapshot after SNAPSHOT_V3_COMMANDS, written by snapshot format 3 (base64). */
export const SNAPSHOT_V3_BASE64 = [
  'iKdiYWNrdXBzkYqkYXRNc80TiKhjaGVja3N1bdlHc2hhMjU2OmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJh',
  'YmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWKmZW5kTHNuqTAvMjAwMDEwMKxmaW5pc2hlZEF0TXPNE4miaWSiYjGpb2Jq',
  'ZWN0S2V5s2JhY2t1cHMvYjEvYmFzZS50YXKpc2l6ZUJ5dGVzzgtTK4Coc3RhcnRMc26pMC8yMDAwMDI4pXN0YXRlqGNvbXBs',
  'ZXRlqHRpbWVsaW5lAahjb21wdXRlc5GJp2FkZHJlc3OtMTAuMC4xLjU6NTQzMqhicmFuY2hPZsCrY3JlYXRlZEF0TXPNF3Ci',
  'aWSiYzGubGFzdEFjdGl2aXR5TXPNGWSpc291cmNlTHNuqTAvMjAwMDEwMK5zb3VyY2VTbmFwc2hvdKJiMaVzdGF0ZadydW5u',
  'aW5nqHRlbmFudElkonQxpmZvcm1hdAOrbWFpbnRlbmFuY2WDpGF0TXPNH0CmcGF1c2Vkw6ZyZWFzb26sdXBncmFkaW5nIG4z',
  'p21lbWJlcnOThKlhZGRlZEF0TXPNA+mpYWRkcmVzc2VzhKNhcGmtMTAuMC4wLjE6ODA4MKhwb3N0Z3Jlc60xMC4wLjAuMTo1',
  'NDMypXByb3h5rTEwLjAuMC4xOjY0MzKkcmFmdK0xMC4wLjAuMTo3MDAwpmhlYWx0aIOmZGV0YWlstG5vIGhlYWx0aCByZXBv',
  'cnQgeWV0p2hlYWx0aHnCrHJlcG9ydGVkQXRNc80D6aJpZKJuMYSpYWRkZWRBdE1zzQPoqWFkZHJlc3Nlc4SjYXBprTEwLjAu',
  'MC4yOjgwODCocG9zdGdyZXOtMTAuMC4wLjI6NTQzMqVwcm94ea0xMC4wLjAuMjo2NDMypHJhZnStMTAuMC4wLjI6NzAwMKZo',
  'ZWFsdGiDpmRldGFpbLRubyBoZWFsdGggcmVwb3J0IHlldKdoZWFsdGh5wqxyZXBvcnRlZEF0TXPNA+iiaWSibjKEqWFkZGVk',
  'QXRNc80D6qlhZGRyZXNzZXOEo2Fwaa0xMC4wLjAuMzo4MDgwqHBvc3RncmVzrTEwLjAuMC4zOjU0MzKlcHJveHmtMTAuMC4w',
  'LjM6NjQzMqRyYWZ0rTEwLjAuMC4zOjcwMDCmaGVhbHRog6ZkZXRhaWytZGlzayA5MSUgZnVsbKdoZWFsdGh5wqxyZXBvcnRl',
  'ZEF0TXPNB9SiaWSibjOocG9zdGdyZXOJr2ZhaWxvdmVyQmxvY2tlZIKkYXRNc80bWKZyZWFzb261bjEgYW5kIG4zIHVucmVh',
  'Y2hhYmxlqmdlbmVyYXRpb24Cp2hpc3RvcnmShaRhdE1zzQfQqmdlbmVyYXRpb24Bo2xzbqkwLzMwMDAxNDikbm9kZaJuMaZy',
  'ZWFzb26pYm9vdHN0cmFwhaRhdE1zzQu4qmdlbmVyYXRpb24Co2xzbqsxNi9CMzc0RDg0OKRub2Rlom4ypnJlYXNvbrBzd2l0',
  'Y2hvdmVyIHRvIG4ypWxlYXNlhKpkdXJhdGlvbk1zzROIqmdlbmVyYXRpb24CpmhvbGRlcqJuMqpyZW5ld2FsU2VxAKVub2Rl',
  'c5OGo2xzboOnZmx1c2hlZKMwLzCocmVjZWl2ZWSjMC8wqHJlcGxheWVkozAvMKRub2Rlom4xrHJlcG9ydGVkQXRNc8CscmVw',
  'b3J0ZWRSb2xlpmFic2VudKRyb2xlpmZlbmNlZKh0aW1lbGluZQCGo2xzboOnZmx1c2hlZKsxNi9CMzc0RDg0OKhyZWNlaXZl',
  'ZLFGRkZGRkZGRi9GRkZGRkZGRqhyZXBsYXllZKkwLzMwMDAxMDCkbm9kZaJuMqxyZXBvcnRlZEF0TXPNB9OscmVwb3J0ZWRS',
  'b2xlp3N0YW5kYnmkcm9sZadwcmltYXJ5qHRpbWVsaW5lAYajbHNug6dmbHVzaGVkozAvMKhyZWNlaXZlZKMwLzCocmVwbGF5',
  'ZWSjMC8wpG5vZGWibjOscmVwb3J0ZWRBdE1zwKxyZXBvcnRlZFJvbGWmYWJzZW50pHJvbGWmYWJzZW50qHRpbWVsaW5lAKdw',
  'cmltYXJ5om4ys3NjaGVkdWxlZFN3aXRjaG92ZXKDq25vdEJlZm9yZU1zy0J5ql2z0AAArXJlcXVlc3RlZEF0TXPNIyiidG+i',
  'bjOqc3luY1F1b3J1bQGsc3luY1N0YW5kYnlzkaJuM6d0ZW5hbnRzkoqrY3JlYXRlZEF0TXPND6GoZGF0YWJhc2WmZ2xvYmV4',
  'q2RlbGV0ZWRBdE1zzQ+jomlkonQwpmxpbWl0c4OubWF4Q29ubmVjdGlvbnMUqHBvb2xTaXplwK9yYXRlTGltaXRQZXJTZWPN',
  'AfSkbmFtZaZnbG9iZXipcGxhY2VtZW50wKRyb2xlpmdsb2JleKVzY3JhbYSqaXRlcmF0aW9uc80QAKRzYWx0uEJ3Y0hCd2NI',
  'QndjSEJ3Y0hCd2NIQnc9PalzZXJ2ZXJLZXnZLEFnSUNBZ0lDQWdJQ0FnSUNBZ0lDQWdJQ0FnSUNBZ0lDQWdJQ0FnSUNBZ0k9',
  'qXN0b3JlZEtledksQVFFQkFRRUJBUUVCQVFFQkFRRUJBUUVCQVFFQkFRRUJBUUVCQVFFQkFRRT2lc3RhdGWnZGVsZXRlZIqr',
  'Y3JlYXRlZEF0TXPND6CoZGF0YWJhc2WnYWNtZV9kYqtkZWxldGVkQXRNc8CiaWSidDGmbGltaXRzg65tYXhDb25uZWN0aW9u',
  'cx6ocG9vbFNpemUIr3JhdGVMaW1pdFBlclNlY80B9KRuYW1lpGFjbWWpcGxhY2VtZW50om4ypHJvbGWqYWNtZV9vd25lcqVz',
  'Y3JhbYSqaXRlcmF0aW9uc80QAKRzYWx0uEJ3Y0hCd2NIQndjSEJ3Y0hCd2NIQnc9PalzZXJ2ZXJLZXnZLEFnSUNBZ0lDQWdJ',
  'Q0FnSUNBZ0lDQWdJQ0FnSUNBZ0lDQWdJQ0FnSUNBZ0k9qXN0b3JlZEtledksQVFFQkFRRUJBUUVCQVFFQkFRRUJBUUVCQVFF',
  'QkFRRUJBUUVCQVFFQkFRRT2lc3RhdGWmYWN0aXZlq3dhbFNlZ21lbnRzkYikYXRNc80TiqhjaGVja3N1bdlHc2hhMjU2OmNk',
  'Y2RjZGNkY2RjZGNkY2RjZGNkY2RjZGNkY2RjZGNkY2RjZGNkY2RjZGNkY2RjZGNkY2RjZGNkY2RjZGNkY2SmZW5kTHNuqTAv',
  'MzAwMDAwMKRuYW1luDAwMDAwMDAxMDAwMDAwMDAwMDAwMDAwMqlvYmplY3RLZXm8d2FsLzAwMDAwMDAxMDAwMDAwMDAwMDAw',
  'MDAwMqlzaXplQnl0ZXPOAQAAAKhzdGFydExzbqkwLzIwMDAwMDCodGltZWxpbmUB',
].join('');

/** encodeCommand of a version-3 tenant.setLimits (t1: pool size 10). */
export const TENANT_SET_LIMITS_V3_HEX =
  '85a461744d73cb4279aa5e77200000a26964a27431a66c696d69747383ae6d6178436f6e6e656374696f6e7332a8706f6f6c53697a650aaf726174654c696d6974506572536563cd03e8a474797065b074656e616e742e7365744c696d697473a17603';
export const TENANT_SET_LIMITS_V3: Command = {
  v: 3,
  type: 'tenant.setLimits',
  id: 't1',
  limits: { maxConnections: 50, rateLimitPerSec: 1000, poolSize: 10 },
  atMs: 1_763_720_000_000,
};

/**
 * The commands that produced SNAPSHOT_V4_BASE64 with snapshot format 4: the
 * version-3 ones (b1 from version-1 commands), then version-4 backups: b2 full,
 * complete and verified; b3 an incremental of b2 that failed; b4 a running
 * incremental of the version-1 b1.
 */
export const SNAPSHOT_V4_COMMANDS: Command[] = [
  ...SNAPSHOT_V3_COMMANDS,
  C.backupRecord({ id: 'b2', node: 'n3', startLsn: '0/5000028', prefix: 'c1/basebackups/b2/', atMs: 11_000 }),
  C.backupComplete({ id: 'b2', endLsn: '0/5000100', atMs: 11_001 }),
  C.backupVerify({ id: 'b2', detail: '3 parts match', atMs: 11_002 }),
  C.backupRecord({ id: 'b3', kind: 'incremental', parent: 'b2', node: 'n3', startLsn: '0/6000028', prefix: 'c1/basebackups/b3/', atMs: 11_003 }),
  C.backupFail({ id: 'b3', reason: 'n3 restarted', atMs: 11_004 }),
  C.backupRecord({ id: 'b4', kind: 'incremental', parent: 'b1', startLsn: '0/7000028', prefix: 'c1/basebackups/b4/', atMs: 11_005 }),
];

/** encodeSnapshot after SNAPSHOT_V4_COMMANDS, written by snapshot format 4 (base64). */
export const SNAPSHOT_V4_BASE64 = [
  'iKdiYWNrdXBzlN4AEKRhdE1zzROIqGNoZWNrc3Vt2UdzaGEyNTY6YWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJh',
  'YmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYqZlbmRMc26pMC8yMDAwMTAwrWZhaWx1cmVSZWFzb27ArGZpbmlzaGVk',
  'QXRNc80TiaJpZKJiMaRraW5kpGZ1bGykbm9kZcCmcGFyZW50wKZwcmVmaXizYmFja3Vwcy9iMS9iYXNlLnRhcqhzdGFydExz',
  'bqkwLzIwMDAwMjilc3RhdGWoY29tcGxldGWrc3RvcmVkQnl0ZXPOC1MrgKh0YXJCeXRlc8CodGltZWxpbmUBrHZlcmlmaWNh',
  'dGlvboSkYXRNc8CmZGV0YWlswKRraW5kwKVzdGF0Zap1bnZlcmlmaWVk3gAQpGF0TXPNKvioY2hlY2tzdW3ZR3NoYTI1Njph',
  'YmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFipmVuZExzbqkw',
  'LzUwMDAxMDCtZmFpbHVyZVJlYXNvbsCsZmluaXNoZWRBdE1zzSr5omlkomIypGtpbmSkZnVsbKRub2Rlom4zpnBhcmVudMCm',
  'cHJlZml4smMxL2Jhc2ViYWNrdXBzL2IyL6hzdGFydExzbqkwLzUwMDAwMjilc3RhdGWoY29tcGxldGWrc3RvcmVkQnl0ZXPO',
  'AmJaAKh0YXJCeXRlc84LUyuAqHRpbWVsaW5lAax2ZXJpZmljYXRpb26EpGF0TXPNKvqmZGV0YWlsrTMgcGFydHMgbWF0Y2ik',
  'a2luZKljaGVja3N1bXOlc3RhdGWodmVyaWZpZWTeABCkYXRNc80q+6hjaGVja3N1bcCmZW5kTHNuwK1mYWlsdXJlUmVhc29u',
  'rG4zIHJlc3RhcnRlZKxmaW5pc2hlZEF0TXPNKvyiaWSiYjOka2luZKtpbmNyZW1lbnRhbKRub2Rlom4zpnBhcmVudKJiMqZw',
  'cmVmaXiyYzEvYmFzZWJhY2t1cHMvYjMvqHN0YXJ0THNuqTAvNjAwMDAyOKVzdGF0ZaZmYWlsZWSrc3RvcmVkQnl0ZXMAqHRh',
  'ckJ5dGVzwKh0aW1lbGluZQGsdmVyaWZpY2F0aW9uhKRhdE1zwKZkZXRhaWzApGtpbmTApXN0YXRlqnVudmVyaWZpZWTeABCk',
  'YXRNc80q/ahjaGVja3N1bcCmZW5kTHNuwK1mYWlsdXJlUmVhc29uwKxmaW5pc2hlZEF0TXPAomlkomI0pGtpbmSraW5jcmVt',
  'ZW50YWykbm9kZaJuMqZwYXJlbnSiYjGmcHJlZml4smMxL2Jhc2ViYWNrdXBzL2I0L6hzdGFydExzbqkwLzcwMDAwMjilc3Rh',
  'dGWncnVubmluZ6tzdG9yZWRCeXRlcwCodGFyQnl0ZXPAqHRpbWVsaW5lAax2ZXJpZmljYXRpb26EpGF0TXPApmRldGFpbMCk',
  'a2luZMClc3RhdGWqdW52ZXJpZmllZKhjb21wdXRlc5GJp2FkZHJlc3OtMTAuMC4xLjU6NTQzMqhicmFuY2hPZsCrY3JlYXRl',
  'ZEF0TXPNF3CiaWSiYzGubGFzdEFjdGl2aXR5TXPNGWSpc291cmNlTHNuqTAvMjAwMDEwMK5zb3VyY2VTbmFwc2hvdKJiMaVz',
  'dGF0ZadydW5uaW5nqHRlbmFudElkonQxpmZvcm1hdASrbWFpbnRlbmFuY2WDpGF0TXPNH0CmcGF1c2Vkw6ZyZWFzb26sdXBn',
  'cmFkaW5nIG4zp21lbWJlcnOThKlhZGRlZEF0TXPNA+mpYWRkcmVzc2VzhKNhcGmtMTAuMC4wLjE6ODA4MKhwb3N0Z3Jlc60x',
  'MC4wLjAuMTo1NDMypXByb3h5rTEwLjAuMC4xOjY0MzKkcmFmdK0xMC4wLjAuMTo3MDAwpmhlYWx0aIOmZGV0YWlstG5vIGhl',
  'YWx0aCByZXBvcnQgeWV0p2hlYWx0aHnCrHJlcG9ydGVkQXRNc80D6aJpZKJuMYSpYWRkZWRBdE1zzQPoqWFkZHJlc3Nlc4Sj',
  'YXBprTEwLjAuMC4yOjgwODCocG9zdGdyZXOtMTAuMC4wLjI6NTQzMqVwcm94ea0xMC4wLjAuMjo2NDMypHJhZnStMTAuMC4w',
  'LjI6NzAwMKZoZWFsdGiDpmRldGFpbLRubyBoZWFsdGggcmVwb3J0IHlldKdoZWFsdGh5wqxyZXBvcnRlZEF0TXPNA+iiaWSi',
  'bjKEqWFkZGVkQXRNc80D6qlhZGRyZXNzZXOEo2Fwaa0xMC4wLjAuMzo4MDgwqHBvc3RncmVzrTEwLjAuMC4zOjU0MzKlcHJv',
  'eHmtMTAuMC4wLjM6NjQzMqRyYWZ0rTEwLjAuMC4zOjcwMDCmaGVhbHRog6ZkZXRhaWytZGlzayA5MSUgZnVsbKdoZWFsdGh5',
  'wqxyZXBvcnRlZEF0TXPNB9SiaWSibjOocG9zdGdyZXOJr2ZhaWxvdmVyQmxvY2tlZIKkYXRNc80bWKZyZWFzb261bjEgYW5k',
  'IG4zIHVucmVhY2hhYmxlqmdlbmVyYXRpb24Cp2hpc3RvcnmShaRhdE1zzQfQqmdlbmVyYXRpb24Bo2xzbqkwLzMwMDAxNDik',
  'bm9kZaJuMaZyZWFzb26pYm9vdHN0cmFwhaRhdE1zzQu4qmdlbmVyYXRpb24Co2xzbqsxNi9CMzc0RDg0OKRub2Rlom4ypnJl',
  'YXNvbrBzd2l0Y2hvdmVyIHRvIG4ypWxlYXNlhKpkdXJhdGlvbk1zzROIqmdlbmVyYXRpb24CpmhvbGRlcqJuMqpyZW5ld2Fs',
  'U2VxAKVub2Rlc5OGo2xzboOnZmx1c2hlZKMwLzCocmVjZWl2ZWSjMC8wqHJlcGxheWVkozAvMKRub2Rlom4xrHJlcG9ydGVk',
  'QXRNc8CscmVwb3J0ZWRSb2xlpmFic2VudKRyb2xlpmZlbmNlZKh0aW1lbGluZQCGo2xzboOnZmx1c2hlZKsxNi9CMzc0RDg0',
  'OKhyZWNlaXZlZLFGRkZGRkZGRi9GRkZGRkZGRqhyZXBsYXllZKkwLzMwMDAxMDCkbm9kZaJuMqxyZXBvcnRlZEF0TXPNB9Os',
  'cmVwb3J0ZWRSb2xlp3N0YW5kYnmkcm9sZadwcmltYXJ5qHRpbWVsaW5lAYajbHNug6dmbHVzaGVkozAvMKhyZWNlaXZlZKMw',
  'LzCocmVwbGF5ZWSjMC8wpG5vZGWibjOscmVwb3J0ZWRBdE1zwKxyZXBvcnRlZFJvbGWmYWJzZW50pHJvbGWmYWJzZW50qHRp',
  'bWVsaW5lAKdwcmltYXJ5om4ys3NjaGVkdWxlZFN3aXRjaG92ZXKDq25vdEJlZm9yZU1zy0J5ql2z0AAArXJlcXVlc3RlZEF0',
  'TXPNIyiidG+ibjOqc3luY1F1b3J1bQGsc3luY1N0YW5kYnlzkaJuM6d0ZW5hbnRzkoqrY3JlYXRlZEF0TXPND6GoZGF0YWJh',
  'c2WmZ2xvYmV4q2RlbGV0ZWRBdE1zzQ+jomlkonQwpmxpbWl0c4OubWF4Q29ubmVjdGlvbnMUqHBvb2xTaXplwK9yYXRlTGlt',
  'aXRQZXJTZWPNAfSkbmFtZaZnbG9iZXipcGxhY2VtZW50wKRyb2xlpmdsb2JleKVzY3JhbYSqaXRlcmF0aW9uc80QAKRzYWx0',
  'uEJ3Y0hCd2NIQndjSEJ3Y0hCd2NIQnc9PalzZXJ2ZXJLZXnZLEFnSUNBZ0lDQWdJQ0FnSUNBZ0lDQWdJQ0FnSUNBZ0lDQWdJ',
  'Q0FnSUNBZ0k9qXN0b3JlZEtledksQVFFQkFRRUJBUUVCQVFFQkFRRUJBUUVCQVFFQkFRRUJBUUVCQVFFQkFRRT2lc3RhdGWn',
  'ZGVsZXRlZIqrY3JlYXRlZEF0TXPND6CoZGF0YWJhc2WnYWNtZV9kYqtkZWxldGVkQXRNc8CiaWSidDGmbGltaXRzg65tYXhD',
  'b25uZWN0aW9ucx6ocG9vbFNpemUIr3JhdGVMaW1pdFBlclNlY80B9KRuYW1lpGFjbWWpcGxhY2VtZW50om4ypHJvbGWqYWNt',
  'ZV9vd25lcqVzY3JhbYSqaXRlcmF0aW9uc80QAKRzYWx0uEJ3Y0hCd2NIQndjSEJ3Y0hCd2NIQnc9PalzZXJ2ZXJLZXnZLEFn',
  'SUNBZ0lDQWdJQ0FnSUNBZ0lDQWdJQ0FnSUNBZ0lDQWdJQ0FnSUNBZ0k9qXN0b3JlZEtledksQVFFQkFRRUJBUUVCQVFFQkFR',
  'RUJBUUVCQVFFQkFRRUJBUUVCQVFFQkFRRT2lc3RhdGWmYWN0aXZlq3dhbFNlZ21lbnRzkYikYXRNc80TiqhjaGVja3N1bdlH',
  'c2hhMjU2OmNkY2RjZGNkY2RjZGNkY2RjZGNkY2RjZGNkY2RjZGNkY2RjZGNkY2RjZGNkY2RjZGNkY2RjZGNkY2RjZGNkY2Sm',
  'ZW5kTHNuqTAvMzAwMDAwMKRuYW1luDAwMDAwMDAxMDAwMDAwMDAwMDAwMDAwMqlvYmplY3RLZXm8d2FsLzAwMDAwMDAxMDAw',
  'MDAwMDAwMDAwMDAwMqlzaXplQnl0ZXPOAQAAAKhzdGFydExzbqkwLzIwMDAwMDCodGltZWxpbmUB',
].join('');

/** encodeCommand of a version-4 backup.record (b7, an incremental of b6 taken from n2). */
export const BACKUP_RECORD_V4_HEX =
  '8aa461744d73cb4279aaaac2600000a26964a26237a46b696e64ab696e6372656d656e74616ca46e6f6465a26e32a6706172656e74a26236a6707265666978b263312f626173656261636b7570732f62372fa873746172744c736eaa322f4130303030303238a874696d656c696e6503a474797065ad6261636b75702e7265636f7264a17604';
export const BACKUP_RECORD_V4: Command = {
  v: 4,
  type: 'backup.record',
  atMs: 1763800000000,
  id: 'b7',
  kind: 'incremental',
  parent: 'b6',
  node: 'n2',
  timeline: 3,
  startLsn: '2/A0000028',
  prefix: 'c1/basebackups/b7/',
};

/** encodeCommand of a version-4 backup.update completing b7. */
export const BACKUP_COMPLETE_V4_HEX =
  '89a461744d73cb4279aaaad1060000a8636865636b73756dd9477368613235363a30663066306630663066306630663066306630663066306630663066306630663066306630663066306630663066306630663066306630663066306630663066a6656e644c736eaa322f4130303030313030a26964a26237a57374617465a8636f6d706c657465ab73746f7265644279746573ce0165ec15a87461724279746573ce075bcd15a474797065ad6261636b75702e757064617465a17604';
export const BACKUP_COMPLETE_V4: Command = {
  v: 4,
  type: 'backup.update',
  atMs: 1763800060000,
  id: 'b7',
  state: 'complete',
  endLsn: '2/A0000100',
  tarBytes: 123456789,
  storedBytes: 23456789,
  checksum: 'sha256:0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f',
};

/** encodeCommand of a version-4 backup.update failing b7. */
export const BACKUP_FAIL_V4_HEX =
  '86a461744d73cb4279aaaad1060000a26964a26237a6726561736f6ebb6f626a6563742073746f72653a2035303320536c6f7720446f776ea57374617465a66661696c6564a474797065ad6261636b75702e757064617465a17604';
export const BACKUP_FAIL_V4: Command = { v: 4, type: 'backup.update', atMs: 1763800060000, id: 'b7', state: 'failed', reason: 'object store: 503 Slow Down' };

/** encodeCommand of a version-4 backup.verify (b7 failed a restore test). */
export const BACKUP_VERIFY_V4_HEX =
  '87a461744d73cb4279aaaadfac0000a664657461696cd9207265636f7665727920656e646564206265666f726520322f4130303030313030a26964a26237a46b696e64a7726573746f7265a6726573756c74a66661696c6564a474797065ad6261636b75702e766572696679a17604';
export const BACKUP_VERIFY_V4: Command = {
  v: 4,
  type: 'backup.verify',
  atMs: 1763800120000,
  id: 'b7',
  result: 'failed',
  kind: 'restore',
  detail: 'recovery ended before 2/A0000100',
};

/** Format 5: a tenant's limits with poolMode (tenant.setLimits version 6). */
export const SNAPSHOT_V5_COMMANDS: Command[] = [
  ...SNAPSHOT_V4_COMMANDS,
  C.tenantSetLimits({ id: 't1', limits: { maxConnections: 30, rateLimitPerSec: 500, poolSize: 8, poolMode: 'session' }, atMs: 12_000 }),
];

/** Version 6: tenant.setLimits with poolMode. */
export const TENANT_SET_LIMITS_V6: Command = {
  v: 6,
  type: 'tenant.setLimits',
  id: 't1',
  limits: { maxConnections: 50, rateLimitPerSec: 1000, poolSize: null, poolMode: 'transaction' },
  atMs: 1_763_720_000_000,
};

/** encodeSnapshot after SNAPSHOT_V5_COMMANDS, written by snapshot format 5 (base64). */
export const SNAPSHOT_V5_BASE64 = [
  'iKdiYWNrdXBzlN4AEKRhdE1zzROIqGNoZWNrc3Vt2UdzaGEyNTY6YWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFi',
  'YWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYqZlbmRMc26pMC8yMDAwMTAwrWZhaWx1cmVSZWFzb27ArGZpbmlzaGVkQXRNc80T',
  'iaJpZKJiMaRraW5kpGZ1bGykbm9kZcCmcGFyZW50wKZwcmVmaXizYmFja3Vwcy9iMS9iYXNlLnRhcqhzdGFydExzbqkwLzIwMDAw',
  'Mjilc3RhdGWoY29tcGxldGWrc3RvcmVkQnl0ZXPOC1MrgKh0YXJCeXRlc8CodGltZWxpbmUBrHZlcmlmaWNhdGlvboSkYXRNc8Cm',
  'ZGV0YWlswKRraW5kwKVzdGF0Zap1bnZlcmlmaWVk3gAQpGF0TXPNKvioY2hlY2tzdW3ZR3NoYTI1NjphYmFiYWJhYmFiYWJhYmFi',
  'YWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFipmVuZExzbqkwLzUwMDAxMDCtZmFpbHVyZVJl',
  'YXNvbsCsZmluaXNoZWRBdE1zzSr5omlkomIypGtpbmSkZnVsbKRub2Rlom4zpnBhcmVudMCmcHJlZml4smMxL2Jhc2ViYWNrdXBz',
  'L2IyL6hzdGFydExzbqkwLzUwMDAwMjilc3RhdGWoY29tcGxldGWrc3RvcmVkQnl0ZXPOAmJaAKh0YXJCeXRlc84LUyuAqHRpbWVs',
  'aW5lAax2ZXJpZmljYXRpb26EpGF0TXPNKvqmZGV0YWlsrTMgcGFydHMgbWF0Y2ika2luZKljaGVja3N1bXOlc3RhdGWodmVyaWZp',
  'ZWTeABCkYXRNc80q+6hjaGVja3N1bcCmZW5kTHNuwK1mYWlsdXJlUmVhc29urG4zIHJlc3RhcnRlZKxmaW5pc2hlZEF0TXPNKvyi',
  'aWSiYjOka2luZKtpbmNyZW1lbnRhbKRub2Rlom4zpnBhcmVudKJiMqZwcmVmaXiyYzEvYmFzZWJhY2t1cHMvYjMvqHN0YXJ0THNu',
  'qTAvNjAwMDAyOKVzdGF0ZaZmYWlsZWSrc3RvcmVkQnl0ZXMAqHRhckJ5dGVzwKh0aW1lbGluZQGsdmVyaWZpY2F0aW9uhKRhdE1z',
  'wKZkZXRhaWzApGtpbmTApXN0YXRlqnVudmVyaWZpZWTeABCkYXRNc80q/ahjaGVja3N1bcCmZW5kTHNuwK1mYWlsdXJlUmVhc29u',
  'wKxmaW5pc2hlZEF0TXPAomlkomI0pGtpbmSraW5jcmVtZW50YWykbm9kZaJuMqZwYXJlbnSiYjGmcHJlZml4smMxL2Jhc2ViYWNr',
  'dXBzL2I0L6hzdGFydExzbqkwLzcwMDAwMjilc3RhdGWncnVubmluZ6tzdG9yZWRCeXRlcwCodGFyQnl0ZXPAqHRpbWVsaW5lAax2',
  'ZXJpZmljYXRpb26EpGF0TXPApmRldGFpbMCka2luZMClc3RhdGWqdW52ZXJpZmllZKhjb21wdXRlc5GJp2FkZHJlc3OtMTAuMC4x',
  'LjU6NTQzMqhicmFuY2hPZsCrY3JlYXRlZEF0TXPNF3CiaWSiYzGubGFzdEFjdGl2aXR5TXPNGWSpc291cmNlTHNuqTAvMjAwMDEw',
  'MK5zb3VyY2VTbmFwc2hvdKJiMaVzdGF0ZadydW5uaW5nqHRlbmFudElkonQxpmZvcm1hdAWrbWFpbnRlbmFuY2WDpGF0TXPNH0Cm',
  'cGF1c2Vkw6ZyZWFzb26sdXBncmFkaW5nIG4zp21lbWJlcnOThKlhZGRlZEF0TXPNA+mpYWRkcmVzc2VzhKNhcGmtMTAuMC4wLjE6',
  'ODA4MKhwb3N0Z3Jlc60xMC4wLjAuMTo1NDMypXByb3h5rTEwLjAuMC4xOjY0MzKkcmFmdK0xMC4wLjAuMTo3MDAwpmhlYWx0aIOm',
  'ZGV0YWlstG5vIGhlYWx0aCByZXBvcnQgeWV0p2hlYWx0aHnCrHJlcG9ydGVkQXRNc80D6aJpZKJuMYSpYWRkZWRBdE1zzQPoqWFk',
  'ZHJlc3Nlc4SjYXBprTEwLjAuMC4yOjgwODCocG9zdGdyZXOtMTAuMC4wLjI6NTQzMqVwcm94ea0xMC4wLjAuMjo2NDMypHJhZnSt',
  'MTAuMC4wLjI6NzAwMKZoZWFsdGiDpmRldGFpbLRubyBoZWFsdGggcmVwb3J0IHlldKdoZWFsdGh5wqxyZXBvcnRlZEF0TXPNA+ii',
  'aWSibjKEqWFkZGVkQXRNc80D6qlhZGRyZXNzZXOEo2Fwaa0xMC4wLjAuMzo4MDgwqHBvc3RncmVzrTEwLjAuMC4zOjU0MzKlcHJv',
  'eHmtMTAuMC4wLjM6NjQzMqRyYWZ0rTEwLjAuMC4zOjcwMDCmaGVhbHRog6ZkZXRhaWytZGlzayA5MSUgZnVsbKdoZWFsdGh5wqxy',
  'ZXBvcnRlZEF0TXPNB9SiaWSibjOocG9zdGdyZXOJr2ZhaWxvdmVyQmxvY2tlZIKkYXRNc80bWKZyZWFzb261bjEgYW5kIG4zIHVu',
  'cmVhY2hhYmxlqmdlbmVyYXRpb24Cp2hpc3RvcnmShaRhdE1zzQfQqmdlbmVyYXRpb24Bo2xzbqkwLzMwMDAxNDikbm9kZaJuMaZy',
  'ZWFzb26pYm9vdHN0cmFwhaRhdE1zzQu4qmdlbmVyYXRpb24Co2xzbqsxNi9CMzc0RDg0OKRub2Rlom4ypnJlYXNvbrBzd2l0Y2hv',
  'dmVyIHRvIG4ypWxlYXNlhKpkdXJhdGlvbk1zzROIqmdlbmVyYXRpb24CpmhvbGRlcqJuMqpyZW5ld2FsU2VxAKVub2Rlc5OGo2xz',
  'boOnZmx1c2hlZKMwLzCocmVjZWl2ZWSjMC8wqHJlcGxheWVkozAvMKRub2Rlom4xrHJlcG9ydGVkQXRNc8CscmVwb3J0ZWRSb2xl',
  'pmFic2VudKRyb2xlpmZlbmNlZKh0aW1lbGluZQCGo2xzboOnZmx1c2hlZKsxNi9CMzc0RDg0OKhyZWNlaXZlZLFGRkZGRkZGRi9G',
  'RkZGRkZGRqhyZXBsYXllZKkwLzMwMDAxMDCkbm9kZaJuMqxyZXBvcnRlZEF0TXPNB9OscmVwb3J0ZWRSb2xlp3N0YW5kYnmkcm9s',
  'ZadwcmltYXJ5qHRpbWVsaW5lAYajbHNug6dmbHVzaGVkozAvMKhyZWNlaXZlZKMwLzCocmVwbGF5ZWSjMC8wpG5vZGWibjOscmVw',
  'b3J0ZWRBdE1zwKxyZXBvcnRlZFJvbGWmYWJzZW50pHJvbGWmYWJzZW50qHRpbWVsaW5lAKdwcmltYXJ5om4ys3NjaGVkdWxlZFN3',
  'aXRjaG92ZXKDq25vdEJlZm9yZU1zy0J5ql2z0AAArXJlcXVlc3RlZEF0TXPNIyiidG+ibjOqc3luY1F1b3J1bQGsc3luY1N0YW5k',
  'YnlzkaJuM6d0ZW5hbnRzkoqrY3JlYXRlZEF0TXPND6GoZGF0YWJhc2WmZ2xvYmV4q2RlbGV0ZWRBdE1zzQ+jomlkonQwpmxpbWl0',
  'c4SubWF4Q29ubmVjdGlvbnMUqHBvb2xNb2RlwKhwb29sU2l6ZcCvcmF0ZUxpbWl0UGVyU2VjzQH0pG5hbWWmZ2xvYmV4qXBsYWNl',
  'bWVudMCkcm9sZaZnbG9iZXilc2NyYW2Eqml0ZXJhdGlvbnPNEACkc2FsdLhCd2NIQndjSEJ3Y0hCd2NIQndjSEJ3PT2pc2VydmVy',
  'S2V52SxBZ0lDQWdJQ0FnSUNBZ0lDQWdJQ0FnSUNBZ0lDQWdJQ0FnSUNBZ0lDQWdJPalzdG9yZWRLZXnZLEFRRUJBUUVCQVFFQkFR',
  'RUJBUUVCQVFFQkFRRUJBUUVCQVFFQkFRRUJBUUU9pXN0YXRlp2RlbGV0ZWSKq2NyZWF0ZWRBdE1zzQ+gqGRhdGFiYXNlp2FjbWVf',
  'ZGKrZGVsZXRlZEF0TXPAomlkonQxpmxpbWl0c4SubWF4Q29ubmVjdGlvbnMeqHBvb2xNb2Rlp3Nlc3Npb26ocG9vbFNpemUIr3Jh',
  'dGVMaW1pdFBlclNlY80B9KRuYW1lpGFjbWWpcGxhY2VtZW50om4ypHJvbGWqYWNtZV9vd25lcqVzY3JhbYSqaXRlcmF0aW9uc80Q',
  'AKRzYWx0uEJ3Y0hCd2NIQndjSEJ3Y0hCd2NIQnc9PalzZXJ2ZXJLZXnZLEFnSUNBZ0lDQWdJQ0FnSUNBZ0lDQWdJQ0FnSUNBZ0lD',
  'QWdJQ0FnSUNBZ0k9qXN0b3JlZEtledksQVFFQkFRRUJBUUVCQVFFQkFRRUJBUUVCQVFFQkFRRUJBUUVCQVFFQkFRRT2lc3RhdGWm',
  'YWN0aXZlq3dhbFNlZ21lbnRzkYikYXRNc80TiqhjaGVja3N1bdlHc2hhMjU2OmNkY2RjZGNkY2RjZGNkY2RjZGNkY2RjZGNkY2Rj',
  'ZGNkY2RjZGNkY2RjZGNkY2RjZGNkY2RjZGNkY2RjZGNkY2SmZW5kTHNuqTAvMzAwMDAwMKRuYW1luDAwMDAwMDAxMDAwMDAwMDAw',
  'MDAwMDAwMqlvYmplY3RLZXm8d2FsLzAwMDAwMDAxMDAwMDAwMDAwMDAwMDAwMqlzaXplQnl0ZXPOAQAAAKhzdGFydExzbqkwLzIw',
  'MDAwMDCodGltZWxpbmUB',
].join('');

/** TENANT_SET_LIMITS_V6 as encodeCommand writes it (hex). */
export const TENANT_SET_LIMITS_V6_HEX =
  '85a461744d73cb4279aa5e77200000a26964a27431a66c696d69747384ae6d6178436f6e6e656374696f6e7332a8706f6f6c4d6f6465ab7472616e73616374696f6ea8706f6f6c53697a65c0af726174654c696d6974506572536563cd03e8a474797065b074656e616e742e7365744c696d697473a17606';

/**
 * Format 6: the continuous WAL archive's index (command version 7): ranges of two
 * timelines, one merged from touching reports, one gap, a history file, and one
 * range trimmed by retention.
 */
export const SNAPSHOT_V6_COMMANDS: Command[] = [
  ...SNAPSHOT_V5_COMMANDS,
  C.walArchived({ generation: 2, timeline: 1, startLsn: '0/2000000', endLsn: '0/3000148', atMs: 13_000 }),
  C.walArchived({ generation: 2, timeline: 2, startLsn: '0/3000148', endLsn: '0/5000000', atMs: 13_001 }),
  C.walArchived({ generation: 2, timeline: 2, startLsn: '0/5000000', endLsn: '0/6000000', atMs: 13_002 }),
  C.walArchived({ generation: 2, timeline: 2, startLsn: '0/7000000', endLsn: '0/7800000', atMs: 13_003 }),
  C.walHistory({ generation: 2, timeline: 2, atMs: 13_004 }),
  C.walForget({ timeline: 1, beforeLsn: '0/2800000', atMs: 13_005 }),
];

/** Version 7: the three commands of the continuous archive. */
export const WAL_ARCHIVED_V7: Command = {
  v: 7,
  type: 'wal.archived',
  generation: 3,
  timeline: 2,
  startLsn: '16/B374D848',
  endLsn: '16/B5000000',
  atMs: 1_763_730_000_000,
};
export const WAL_HISTORY_V7: Command = { v: 7, type: 'wal.history', generation: 3, timeline: 2, atMs: 1_763_730_000_001 };
export const WAL_FORGET_V7: Command = { v: 7, type: 'wal.forget', timeline: 1, beforeLsn: '0/2800000', atMs: 1_763_730_000_002 };

/** encodeSnapshot after SNAPSHOT_V6_COMMANDS, written by snapshot format 6 (base64). */
export const SNAPSHOT_V6_BASE64 = [
  'iadiYWNrdXBzlN4AEKRhdE1zzROIqGNoZWNrc3Vt2UdzaGEyNTY6YWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFi',
  'YWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYqZlbmRMc26pMC8yMDAwMTAwrWZhaWx1cmVSZWFzb27ArGZpbmlzaGVkQXRNc80T',
  'iaJpZKJiMaRraW5kpGZ1bGykbm9kZcCmcGFyZW50wKZwcmVmaXizYmFja3Vwcy9iMS9iYXNlLnRhcqhzdGFydExzbqkwLzIwMDAw',
  'Mjilc3RhdGWoY29tcGxldGWrc3RvcmVkQnl0ZXPOC1MrgKh0YXJCeXRlc8CodGltZWxpbmUBrHZlcmlmaWNhdGlvboSkYXRNc8Cm',
  'ZGV0YWlswKRraW5kwKVzdGF0Zap1bnZlcmlmaWVk3gAQpGF0TXPNKvioY2hlY2tzdW3ZR3NoYTI1NjphYmFiYWJhYmFiYWJhYmFi',
  'YWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFipmVuZExzbqkwLzUwMDAxMDCtZmFpbHVyZVJl',
  'YXNvbsCsZmluaXNoZWRBdE1zzSr5omlkomIypGtpbmSkZnVsbKRub2Rlom4zpnBhcmVudMCmcHJlZml4smMxL2Jhc2ViYWNrdXBz',
  'L2IyL6hzdGFydExzbqkwLzUwMDAwMjilc3RhdGWoY29tcGxldGWrc3RvcmVkQnl0ZXPOAmJaAKh0YXJCeXRlc84LUyuAqHRpbWVs',
  'aW5lAax2ZXJpZmljYXRpb26EpGF0TXPNKvqmZGV0YWlsrTMgcGFydHMgbWF0Y2ika2luZKljaGVja3N1bXOlc3RhdGWodmVyaWZp',
  'ZWTeABCkYXRNc80q+6hjaGVja3N1bcCmZW5kTHNuwK1mYWlsdXJlUmVhc29urG4zIHJlc3RhcnRlZKxmaW5pc2hlZEF0TXPNKvyi',
  'aWSiYjOka2luZKtpbmNyZW1lbnRhbKRub2Rlom4zpnBhcmVudKJiMqZwcmVmaXiyYzEvYmFzZWJhY2t1cHMvYjMvqHN0YXJ0THNu',
  'qTAvNjAwMDAyOKVzdGF0ZaZmYWlsZWSrc3RvcmVkQnl0ZXMAqHRhckJ5dGVzwKh0aW1lbGluZQGsdmVyaWZpY2F0aW9uhKRhdE1z',
  'wKZkZXRhaWzApGtpbmTApXN0YXRlqnVudmVyaWZpZWTeABCkYXRNc80q/ahjaGVja3N1bcCmZW5kTHNuwK1mYWlsdXJlUmVhc29u',
  'wKxmaW5pc2hlZEF0TXPAomlkomI0pGtpbmSraW5jcmVtZW50YWykbm9kZaJuMqZwYXJlbnSiYjGmcHJlZml4smMxL2Jhc2ViYWNr',
  'dXBzL2I0L6hzdGFydExzbqkwLzcwMDAwMjilc3RhdGWncnVubmluZ6tzdG9yZWRCeXRlcwCodGFyQnl0ZXPAqHRpbWVsaW5lAax2',
  'ZXJpZmljYXRpb26EpGF0TXPApmRldGFpbMCka2luZMClc3RhdGWqdW52ZXJpZmllZKhjb21wdXRlc5GJp2FkZHJlc3OtMTAuMC4x',
  'LjU6NTQzMqhicmFuY2hPZsCrY3JlYXRlZEF0TXPNF3CiaWSiYzGubGFzdEFjdGl2aXR5TXPNGWSpc291cmNlTHNuqTAvMjAwMDEw',
  'MK5zb3VyY2VTbmFwc2hvdKJiMaVzdGF0ZadydW5uaW5nqHRlbmFudElkonQxpmZvcm1hdAarbWFpbnRlbmFuY2WDpGF0TXPNH0Cm',
  'cGF1c2Vkw6ZyZWFzb26sdXBncmFkaW5nIG4zp21lbWJlcnOThKlhZGRlZEF0TXPNA+mpYWRkcmVzc2VzhKNhcGmtMTAuMC4wLjE6',
  'ODA4MKhwb3N0Z3Jlc60xMC4wLjAuMTo1NDMypXByb3h5rTEwLjAuMC4xOjY0MzKkcmFmdK0xMC4wLjAuMTo3MDAwpmhlYWx0aIOm',
  'ZGV0YWlstG5vIGhlYWx0aCByZXBvcnQgeWV0p2hlYWx0aHnCrHJlcG9ydGVkQXRNc80D6aJpZKJuMYSpYWRkZWRBdE1zzQPoqWFk',
  'ZHJlc3Nlc4SjYXBprTEwLjAuMC4yOjgwODCocG9zdGdyZXOtMTAuMC4wLjI6NTQzMqVwcm94ea0xMC4wLjAuMjo2NDMypHJhZnSt',
  'MTAuMC4wLjI6NzAwMKZoZWFsdGiDpmRldGFpbLRubyBoZWFsdGggcmVwb3J0IHlldKdoZWFsdGh5wqxyZXBvcnRlZEF0TXPNA+ii',
  'aWSibjKEqWFkZGVkQXRNc80D6qlhZGRyZXNzZXOEo2Fwaa0xMC4wLjAuMzo4MDgwqHBvc3RncmVzrTEwLjAuMC4zOjU0MzKlcHJv',
  'eHmtMTAuMC4wLjM6NjQzMqRyYWZ0rTEwLjAuMC4zOjcwMDCmaGVhbHRog6ZkZXRhaWytZGlzayA5MSUgZnVsbKdoZWFsdGh5wqxy',
  'ZXBvcnRlZEF0TXPNB9SiaWSibjOocG9zdGdyZXOJr2ZhaWxvdmVyQmxvY2tlZIKkYXRNc80bWKZyZWFzb261bjEgYW5kIG4zIHVu',
  'cmVhY2hhYmxlqmdlbmVyYXRpb24Cp2hpc3RvcnmShaRhdE1zzQfQqmdlbmVyYXRpb24Bo2xzbqkwLzMwMDAxNDikbm9kZaJuMaZy',
  'ZWFzb26pYm9vdHN0cmFwhaRhdE1zzQu4qmdlbmVyYXRpb24Co2xzbqsxNi9CMzc0RDg0OKRub2Rlom4ypnJlYXNvbrBzd2l0Y2hv',
  'dmVyIHRvIG4ypWxlYXNlhKpkdXJhdGlvbk1zzROIqmdlbmVyYXRpb24CpmhvbGRlcqJuMqpyZW5ld2FsU2VxAKVub2Rlc5OGo2xz',
  'boOnZmx1c2hlZKMwLzCocmVjZWl2ZWSjMC8wqHJlcGxheWVkozAvMKRub2Rlom4xrHJlcG9ydGVkQXRNc8CscmVwb3J0ZWRSb2xl',
  'pmFic2VudKRyb2xlpmZlbmNlZKh0aW1lbGluZQCGo2xzboOnZmx1c2hlZKsxNi9CMzc0RDg0OKhyZWNlaXZlZLFGRkZGRkZGRi9G',
  'RkZGRkZGRqhyZXBsYXllZKkwLzMwMDAxMDCkbm9kZaJuMqxyZXBvcnRlZEF0TXPNB9OscmVwb3J0ZWRSb2xlp3N0YW5kYnmkcm9s',
  'ZadwcmltYXJ5qHRpbWVsaW5lAYajbHNug6dmbHVzaGVkozAvMKhyZWNlaXZlZKMwLzCocmVwbGF5ZWSjMC8wpG5vZGWibjOscmVw',
  'b3J0ZWRBdE1zwKxyZXBvcnRlZFJvbGWmYWJzZW50pHJvbGWmYWJzZW50qHRpbWVsaW5lAKdwcmltYXJ5om4ys3NjaGVkdWxlZFN3',
  'aXRjaG92ZXKDq25vdEJlZm9yZU1zy0J5ql2z0AAArXJlcXVlc3RlZEF0TXPNIyiidG+ibjOqc3luY1F1b3J1bQGsc3luY1N0YW5k',
  'YnlzkaJuM6d0ZW5hbnRzkoqrY3JlYXRlZEF0TXPND6GoZGF0YWJhc2WmZ2xvYmV4q2RlbGV0ZWRBdE1zzQ+jomlkonQwpmxpbWl0',
  'c4SubWF4Q29ubmVjdGlvbnMUqHBvb2xNb2RlwKhwb29sU2l6ZcCvcmF0ZUxpbWl0UGVyU2VjzQH0pG5hbWWmZ2xvYmV4qXBsYWNl',
  'bWVudMCkcm9sZaZnbG9iZXilc2NyYW2Eqml0ZXJhdGlvbnPNEACkc2FsdLhCd2NIQndjSEJ3Y0hCd2NIQndjSEJ3PT2pc2VydmVy',
  'S2V52SxBZ0lDQWdJQ0FnSUNBZ0lDQWdJQ0FnSUNBZ0lDQWdJQ0FnSUNBZ0lDQWdJPalzdG9yZWRLZXnZLEFRRUJBUUVCQVFFQkFR',
  'RUJBUUVCQVFFQkFRRUJBUUVCQVFFQkFRRUJBUUU9pXN0YXRlp2RlbGV0ZWSKq2NyZWF0ZWRBdE1zzQ+gqGRhdGFiYXNlp2FjbWVf',
  'ZGKrZGVsZXRlZEF0TXPAomlkonQxpmxpbWl0c4SubWF4Q29ubmVjdGlvbnMeqHBvb2xNb2Rlp3Nlc3Npb26ocG9vbFNpemUIr3Jh',
  'dGVMaW1pdFBlclNlY80B9KRuYW1lpGFjbWWpcGxhY2VtZW50om4ypHJvbGWqYWNtZV9vd25lcqVzY3JhbYSqaXRlcmF0aW9uc80Q',
  'AKRzYWx0uEJ3Y0hCd2NIQndjSEJ3Y0hCd2NIQnc9PalzZXJ2ZXJLZXnZLEFnSUNBZ0lDQWdJQ0FnSUNBZ0lDQWdJQ0FnSUNBZ0lD',
  'QWdJQ0FnSUNBZ0k9qXN0b3JlZEtledksQVFFQkFRRUJBUUVCQVFFQkFRRUJBUUVCQVFFQkFRRUJBUUVCQVFFQkFRRT2lc3RhdGWm',
  'YWN0aXZlqndhbEFyY2hpdmWCsGhpc3RvcnlUaW1lbGluZXORAqZyYW5nZXOThadlbmRBdE1zzTLIpmVuZExzbqkwLzMwMDAxNDip',
  'c3RhcnRBdE1zzTLIqHN0YXJ0THNuqTAvMjgwMDAwMKh0aW1lbGluZQGFp2VuZEF0TXPNMsqmZW5kTHNuqTAvNjAwMDAwMKlzdGFy',
  'dEF0TXPNMsmoc3RhcnRMc26pMC8zMDAwMTQ4qHRpbWVsaW5lAoWnZW5kQXRNc80yy6ZlbmRMc26pMC83ODAwMDAwqXN0YXJ0QXRN',
  'c80yy6hzdGFydExzbqkwLzcwMDAwMDCodGltZWxpbmUCq3dhbFNlZ21lbnRzkYikYXRNc80TiqhjaGVja3N1bdlHc2hhMjU2OmNk',
  'Y2RjZGNkY2RjZGNkY2RjZGNkY2RjZGNkY2RjZGNkY2RjZGNkY2RjZGNkY2RjZGNkY2RjZGNkY2RjZGNkY2SmZW5kTHNuqTAvMzAw',
  'MDAwMKRuYW1luDAwMDAwMDAxMDAwMDAwMDAwMDAwMDAwMqlvYmplY3RLZXm8d2FsLzAwMDAwMDAxMDAwMDAwMDAwMDAwMDAwMqlz',
  'aXplQnl0ZXPOAQAAAKhzdGFydExzbqkwLzIwMDAwMDCodGltZWxpbmUB',
].join('');

/** WAL_ARCHIVED_V7 as encodeCommand writes it (hex). */
export const WAL_ARCHIVED_V7_HEX =
  '87a461744d73cb4279aa6800880000a6656e644c736eab31362f4235303030303030aa67656e65726174696f6e03a873746172744c736eab31362f4233373444383438a874696d656c696e6502a474797065ac77616c2e6172636869766564a17607';

/** WAL_HISTORY_V7 as encodeCommand writes it (hex). */
export const WAL_HISTORY_V7_HEX = '85a461744d73cb4279aa6800881000aa67656e65726174696f6e03a874696d656c696e6502a474797065ab77616c2e686973746f7279a17607';

/** WAL_FORGET_V7 as encodeCommand writes it (hex). */
export const WAL_FORGET_V7_HEX =
  '85a461744d73cb4279aa6800882000a96265666f72654c736ea9302f32383030303030a874696d656c696e6501a474797065aa77616c2e666f72676574a17607';
