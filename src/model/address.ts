/**
 * Canonical text form of IP addresses. Every address that reaches a command, a firewall rule,
 * a table key or a Tumbler hash goes through here first, so that two spellings of one host
 * compare equal and nothing but an address can ever be substituted for %IP%.
 */

export type Family = 4 | 6;

/** Where a socket listens: a literal address (no brackets) and a port. */
export interface ListenAddress {
  host: string;
  port: number;
  /** The default [::]: on a kernel without IPv6 (booted with ipv6.disable=1) it is left out with a warning, not a failure. */
  ifAvailable?: true;
}

/** `host:port`, with an IPv6 host in brackets, as the config writes it. */
export function formatListen(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Dotted-quad IPv4 with no leading zeros, or null. */
export function canonicalIPv4(text: string): string | null {
  if (text.length < 7 || text.length > 15) return null;
  let octets = 0;
  let value = -1;
  let digits = 0;
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : 46; /* '.' closes the last octet */
    if (c >= 48 && c <= 57) {
      if (digits > 0 && value === 0) return null; /* leading zero: ambiguous (octal to some tools) */
      value = (value < 0 ? 0 : value * 10) + (c - 48);
      digits++;
      if (value > 255) return null;
    } else if (c === 46) {
      if (digits === 0) return null;
      octets++;
      value = -1;
      digits = 0;
    } else {
      return null;
    }
  }
  return octets === 4 ? text : null;
}

function parseIPv6Groups(text: string): number[] | null {
  if (text.length < 2 || text.length > 39) return null;
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const parseHalf = (half: string): number[] | null => {
    if (half === '') return [];
    const out: number[] = [];
    for (const group of half.split(':')) {
      if (group.length === 0 || group.length > 4) return null;
      let v = 0;
      for (let i = 0; i < group.length; i++) {
        const c = group.charCodeAt(i);
        let d: number;
        if (c >= 48 && c <= 57) d = c - 48;
        else if (c >= 97 && c <= 102) d = c - 87;
        else if (c >= 65 && c <= 70) d = c - 55;
        else return null; /* no embedded dotted quads, zones or other text */
        v = v * 16 + d;
      }
      out.push(v);
    }
    return out;
  };
  const head = parseHalf(halves[0]);
  if (!head) return null;
  if (halves.length === 1) return head.length === 8 ? head : null;
  const tail = parseHalf(halves[1]);
  if (!tail || head.length + tail.length > 7) return null;
  return [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
}

/** RFC 5952 form of an IPv6 address (lower case, longest zero run compressed), or null. */
export function canonicalIPv6(text: string): string | null {
  const groups = parseIPv6Groups(text);
  if (!groups) return null;
  let bestStart = -1;
  let bestLen = 1; /* a single zero group is never compressed */
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return hex.slice(0, bestStart).join(':') + '::' + hex.slice(bestStart + bestLen).join(':');
}

/**
 * An address a knock may come from: canonical IPv4, or canonical IPv6 that is not an
 * IPv4-mapped address (::ffff:a.b.c.d would let one knock open a door for another family's
 * rules), and not the unspecified address, which no packet comes from. Null for anything else.
 */
export function canonicalSource(text: string): { address: string; family: Family } | null {
  const v4 = canonicalIPv4(text);
  if (v4) return v4 === '0.0.0.0' ? null : { address: v4, family: 4 };
  const v6 = canonicalIPv6(text);
  if (!v6 || v6 === '::' || v6.startsWith('::ffff:')) return null;
  return { address: v6, family: 6 };
}

/** True when the text is already in the canonical form canonicalSource would give it. */
export function isCanonicalSource(text: string): boolean {
  const c = canonicalSource(text);
  return c !== null && c.address === text;
}

/** The 4 or 16 bytes of a canonical address, most significant first. */
export function addressOctets(address: string, family: Family): number[] {
  return family === 4 ? address.split('.').map(Number) : (parseIPv6Groups(address) ?? []).flatMap((g) => [g >> 8, g & 0xff]);
}

/** The network address of `address`/`prefix` (host bits cleared), canonical. */
export function networkOf(address: string, family: Family, prefix: number): string {
  const masked = addressOctets(address, family).map((b, i) => {
    const keep = Math.max(0, Math.min(8, prefix - i * 8));
    return b & (0xff << (8 - keep)) & 0xff;
  });
  if (family === 4) return masked.join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((masked[i] << 8) | masked[i + 1]).toString(16));
  return canonicalIPv6(groups.join(':'))!;
}

/**
 * What a door may be opened for: a canonical source address, or a canonical network prefix
 * `NETWORK/LEN` (host bits zero, LEN shorter than the address) that a Tumbler v2 door grants.
 */
export function isCanonicalTarget(text: string): boolean {
  if (isCanonicalSource(text)) return true;
  const m = /^([^/]+)\/([1-9][0-9]{0,2})$/.exec(text);
  const c = m && canonicalSource(m[1]);
  if (!m || !c || c.address !== m[1]) return false;
  const len = Number(m[2]);
  return len < (c.family === 4 ? 32 : 128) && networkOf(c.address, c.family, len) === c.address;
}

/**
 * A canonical dotted quad as an unsigned 32-bit integer: how the knock table keys IPv4 sources,
 * so that a source costs no string. The text must already be canonical (canonicalIPv4).
 */
export function ipv4ToInt(text: string): number {
  let n = 0;
  let octet = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 46) {
      n = n * 256 + octet;
      octet = 0;
    } else {
      octet = octet * 10 + (c - 48);
    }
  }
  return n * 256 + octet;
}

/** The canonical dotted quad of an unsigned 32-bit integer. */
export function intToIPv4(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}
