import { addon } from './internal/addon.js';
import { checkString } from './internal/errors.js';

/**
 * Opens an AF_PACKET raw socket bound to `ifname` (all protocols,
 * non-blocking), like the kernel samples' open_raw_sock(). Returns the fd;
 * close it with fs.closeSync(). Attach a socket filter to it with
 * BpfProgram#attachSocket.
 *
 * @throws BpfError with op if_nametoindex (an unknown interface),
 *   socket(PF_PACKET) (EPERM without CAP_NET_RAW) or bind.
 */
export function openRawSocket(ifname: string): number {
  return addon.openRawSocket(checkString('ifname', ifname));
}
