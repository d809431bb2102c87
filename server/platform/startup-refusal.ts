// Why a server refuses to start: another server holds its data directory or its port, or the data
// it would serve is incomplete (a missing keyring, acknowledged writes missing from the log). The
// CLI prints the message (it names what to do) and exits with STARTUP_REFUSED_EXIT_CODE.

/** Exit code of `parley serve` when it refuses to start (0 ok, 1 failure, 2 usage/config). */
export const STARTUP_REFUSED_EXIT_CODE = 3;

/** A reason not to start, with a message meant for the operator. */
export class StartupRefusal extends Error {
  override readonly name = "StartupRefusal";
}
