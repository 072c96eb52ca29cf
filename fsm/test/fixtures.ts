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
  C.promote({ node: 'n2', generation: 2, reason: 'switchover to n2', lsn: '16/B374D848', leaseDurationMs: 5000, automatic: false, atMs: 3000, lapsedLease: { holder: 'n1', renewalSeq: 3 } }),
  C.tenantCreate({ atMs: 4000 }),
  C.tenantCreate({ id: 't0', name: 'globex', database: 'globex', role: 'globex', atMs: 4001 }),
  C.tenantPlace({ node: 'n2', atMs: 4002 }),
  C.tenantDelete({ id: 't0', atMs: 4003 }),
  C.backupRecord({ atMs: 5000 }),
  C.backupUpdate({ atMs: 5001 }),
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
const { lapsedLease: _absentInV1, ...promoteAsWritten } = C.promote({ node: 'n2', generation: 7, reason: 'failover: n1 unreachable', lsn: '1/A0', leaseDurationMs: 2500, automatic: true, atMs: 1_750_000_000_123 });
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
export const SCHEDULE_SWITCHOVER_V2: Command = { v: 2, type: 'pg.scheduleSwitchover', to: 'n2', notBeforeMs: Date.UTC(2026, 10, 21, 10), generation: 3, atMs: 1_763_700_000_000 };

/**
 * The commands that produced SNAPSHOT_V3_BASE64 with snapshot format 3: the
 * version-2 ones, then t1's limits set with a pool size (a version-3 command).
 */
export const SNAPSHOT_V3_COMMANDS: Command[] = [
  ...SNAPSHOT_V2_COMMANDS,
  C.tenantSetLimits({ id: 't1', limits: { maxConnections: 30, rateLimitPerSec: 500, poolSize: 8 }, atMs: 10_000 }),
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
export const TENANT_SET_LIMITS_V3: Command = { v: 3, type: 'tenant.setLimits', id: 't1', limits: { maxConnections: 50, rateLimitPerSec: 1000, poolSize: 10 }, atMs: 1_763_720_000_000 };
