// Key indexes of LiveKit's per-participant key ring, apart from the key provider so that code without
// livekit-client (the key installer and its Node tests) can use them.

/** The KID stream number of LiveKit's one key per participant (docs/e2ee.md section 5.3). */
export const LiveKitStream = 0xff;

/** LiveKit's key ring: one byte of key index in every frame. */
export const KeyringSize = 256;

/**
 * keyIndex is the LiveKit key index of an epoch and generation: consecutive key states never share one, so
 * a receiver holds the old key beside the new one during the grace period.
 */
export function keyIndex(epoch: number, generation: number): number {
  return (epoch * 16 + generation) % KeyringSize;
}
