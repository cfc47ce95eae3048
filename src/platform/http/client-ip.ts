// Who a request comes from, for rate limits: the socket's address (the server records it per request), or the
// header a trusted proxy sets or appends to (CLIENT_IP_HEADER; on Fly, Fly-Client-IP) when, and only when,
// configured.
// IPv6 clients count by their /64, the block one host or one site usually holds: counted per address, one host
// would get a fresh quota for each of its 2^64 addresses.
const socketAddresses = new WeakMap<Request, string>();

/** Called by the server for each request it hands to the app. */
export function rememberSocketAddress(request: Request, address: string | undefined): void {
  if (address !== undefined) socketAddresses.set(request, address);
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const HEX_GROUP = /^[0-9A-Fa-f]{1,4}$/;

/** The four octets of a dotted IPv4 address in decimal (no leading zeros, which some readers take as octal). */
function ipv4Octets(text: string): number[] | undefined {
  const m = IPV4.exec(text);
  if (m === null) return undefined;
  const octets = m.slice(1).map(Number);
  for (let i = 0; i < 4; i++) if (octets[i]! > 255 || (m[i + 1]!.length > 1 && m[i + 1]![0] === "0")) return undefined;
  return octets;
}

/** The groups of one side of an IPv6 address's "::" (the last may be a dotted IPv4 address, two groups). */
function groupsOf(text: string, last: boolean): number[] | undefined {
  if (text === "") return [];
  const parts = text.split(":");
  const out: number[] = [];
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    if (last && i === parts.length - 1 && part.includes(".")) {
      const v4 = ipv4Octets(part);
      if (v4 === undefined) return undefined;
      out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
    } else if (HEX_GROUP.test(part)) out.push(parseInt(part, 16));
    else return undefined;
  }
  return out;
}

/** The eight 16-bit groups of an IPv6 address in any RFC 4291 spelling, undefined when `text` is none. */
function ipv6Groups(text: string): number[] | undefined {
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  if (halves.length === 1) {
    const all = groupsOf(text, true);
    return all?.length === 8 ? all : undefined;
  }
  const head = groupsOf(halves[0]!, false);
  const tail = groupsOf(halves[1]!, true);
  if (head === undefined || tail === undefined || head.length + tail.length > 7) return undefined;
  return [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
}

/**
 * Whether an IPv6 address stands for an IPv4 client in its last 32 bits: IPv4-mapped (`::ffff:0:0/96`), or NAT64's
 * well-known prefix (`64:ff9b::/96`, RFC 6052), where every IPv4 host behind the translator would share one /64.
 */
function embedsIpv4(g: number[]): boolean {
  if (g[2] !== 0 || g[3] !== 0 || g[4] !== 0) return false;
  return (g[0] === 0 && g[1] === 0 && g[5] === 0xffff) || (g[0] === 0x64 && g[1] === 0xff9b && g[5] === 0);
}

/**
 * The client an address stands for, in one spelling: an IPv4 address as dotted decimal (an IPv4-mapped or NAT64
 * IPv6 address, `::ffff:1.2.3.4` or `64:ff9b::1.2.3.4`, is that IPv4 client), an IPv6 one as its /64
 * (`2001:db8:1:2::/64`, whatever the spelling: compressed, zero-padded, upper case); undefined when `text` is no
 * IP address. A zone (`%eth0`) is ignored.
 */
export function clientOfAddress(text: string): string | undefined {
  if (text.length > 60) return undefined;
  const zone = text.indexOf("%");
  const address = zone < 0 ? text : text.slice(0, zone);
  if (!address.includes(":")) return ipv4Octets(address)?.join(".");
  const g = ipv6Groups(address);
  if (g === undefined) return undefined;
  if (embedsIpv4(g)) {
    return `${g[6]! >> 8}.${g[6]! & 255}.${g[7]! >> 8}.${g[7]! & 255}`;
  }
  return `${g[0]!.toString(16)}:${g[1]!.toString(16)}:${g[2]!.toString(16)}:${g[3]!.toString(16)}::/64`;
}

const IPV4_WITH_PORT = /^([\d.]+):(\d{1,5})$/;
const BRACKETED = /^\[([^\]]+)\](?::(\d{1,5}))?$/;

/**
 * The client an entry of a proxy's header stands for: an address (clientOfAddress), also with the port some
 * proxies append, `1.2.3.4:443` or `[2001:db8::1]:443` (RFC 7239's node syntax; an IPv6 address takes its port
 * only in brackets, `2001:db8::1:443` being an address itself). Undefined when it is none of these.
 */
export function clientOfEntry(entry: string): string | undefined {
  const m = BRACKETED.exec(entry) ?? IPV4_WITH_PORT.exec(entry);
  if (m === null) return clientOfAddress(entry);
  if (m[2] !== undefined && Number(m[2]) > 65535) return undefined;
  // A bracket holds an IPv6 address only; without them the part before the port must be IPv4.
  return m[0].startsWith("[") === m[1]!.includes(":") ? clientOfAddress(m[1]!) : undefined;
}

/**
 * The client a request counts as for rate limits (clientOfAddress): from the trusted header when configured and
 * its last entry is an address (clientOfEntry: a port after it is allowed), else the socket's; "unknown" when neither says (app.handle in tests). The last
 * entry, because a list (X-Forwarded-For) is one the client may start and each proxy appends to: only the entry
 * the trusted proxy appended is not the client's to choose.
 */
export function clientKeyOf(request: Request, trustedHeader?: string): string {
  if (trustedHeader !== undefined) {
    const given = request.headers.get(trustedHeader);
    if (given !== null) {
      const client = clientOfEntry(given.slice(given.lastIndexOf(",") + 1).trim());
      if (client !== undefined) return client;
    }
  }
  const socket = socketAddresses.get(request);
  if (socket === undefined) return "unknown";
  return clientOfAddress(socket) ?? socket;
}
