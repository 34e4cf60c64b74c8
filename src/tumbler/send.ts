/**
 * How a client sends a Tumbler knock: the same datagram a few times, spaced apart. A server
 * flooded past what it can check loses datagrams at its socket buffer, junk and knocks alike;
 * a knock sent once is then lost with the same odds as a junk datagram, and its sender cannot
 * tell (the server never answers). Copies spaced apart each take their own chance, and cost
 * nothing at the server: the replay cache counts every copy after the first as a replay of the
 * knock it just accepted from the same source, which the listener does not warn about.
 */
import dgram from 'node:dgram';

/** Copies of each knock, and the time between two: 4 copies over 0.6 s. */
export const KNOCK_COPIES = 4;
export const COPY_SPACING_MS = 200;
/** The most a client may send (`tumbler open --copies`), and the time they all go out in. */
export const MAX_COPIES = 10;
export const COPY_WINDOW_MS = MAX_COPIES * COPY_SPACING_MS;

export async function sendKnock(
  datagram: Buffer,
  port: number,
  to: { address: string; family: 4 | 6 },
  copies = KNOCK_COPIES,
  spacingMs = COPY_SPACING_MS,
): Promise<void> {
  const s = dgram.createSocket(to.family === 6 ? 'udp6' : 'udp4');
  try {
    for (let i = 0; i < copies; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, spacingMs));
      await new Promise<void>((res, rej) => s.send(datagram, port, to.address, (e) => (e ? rej(e) : res())));
    }
  } finally {
    s.close();
  }
}
