// Error kinds mirror crypto/e2ee's sentinels (docs/e2ee.md sections 7.1 and 11), so a UI and a test can branch
// on the same names as the Go client.

export const ErrMalformed = 'malformed';
export const ErrBadSignature = 'bad_signature';
export const ErrContextMismatch = 'context_mismatch';
export const ErrUnsupportedKEM = 'unsupported_kem';
export const ErrKEMNotAllowed = 'kem_not_allowed';
export const ErrNotMember = 'not_member';
export const ErrNoRoster = 'no_roster';
export const ErrStaleEpoch = 'stale_epoch';
export const ErrConflict = 'conflict';
export const ErrRateLimited = 'rate_limited';
export const ErrReplay = 'replay';
export const ErrFork = 'fork';
export const ErrGap = 'gap';
export const ErrLockedRoster = 'locked_roster';
export const ErrCredentialMismatch = 'credential_mismatch';
export const ErrCredentialExpired = 'credential_expired';
export const ErrImpersonation = 'impersonation';
export const ErrClone = 'clone';
export const ErrIdentityMismatch = 'identity_mismatch';
export const ErrStaleKeyPackage = 'stale_key_package';
export const ErrUndecryptable = 'undecryptable';
export const ErrHalted = 'halted';
export const ErrRemoved = 'removed';
export const ErrNotRegistered = 'not_registered';
export const ErrNoKey = 'no_key';
export const ErrHTTP = 'http';

/** E2EEError carries the kind of a refusal (one of the Err* names). */
export class E2EEError extends Error {
  constructor(
    readonly kind: string,
    message: string,
  ) {
    super(`e2ee: ${kind}: ${message}`);
    this.name = 'E2EEError';
  }
}

/**
 * AlarmError is evidence that the gateway deviated from the protocol. The client drops every key and halts;
 * a UI shows a banner naming the kind.
 */
export class AlarmError extends E2EEError {
  readonly alarm = true;
  constructor(
    kind: string,
    readonly epoch: number,
    readonly member: string, // hex credential hash, '' if none
    readonly detail: string,
  ) {
    super(kind, `alarm at epoch ${epoch}${member ? ' member ' + member.slice(0, 16) : ''}: ${detail}`);
    this.name = 'AlarmError';
  }
}

export function isAlarm(e: unknown): e is AlarmError {
  return e instanceof AlarmError;
}

export function kindOf(e: unknown): string {
  return e instanceof E2EEError ? e.kind : '';
}
