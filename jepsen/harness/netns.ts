// The network-namespace helpers of the partition test, shared (not copied).
export { assertPrivateNetns, canConnect, establishedTcp, loopbackUp, processesInThisNetns, sh } from '../../test/helpers/netns.js';
