// Who a request comes from, for rate limits: the socket's address (the server records it per request), or the
// header a trusted proxy sets (CLIENT_IP_HEADER; on Fly, Fly-Client-IP) when, and only when, configured.
const socketAddresses = new WeakMap<Request, string>();

/** Called by the server for each request it hands to the app. */
export function rememberSocketAddress(request: Request, address: string | undefined): void {
  if (address !== undefined) socketAddresses.set(request, address);
}

const IP_CHARS = /^[0-9A-Fa-f:.]{2,45}$/;

/** The client's IP as text; "unknown" when neither the header nor the socket says (app.handle in tests). */
export function clientIpOf(request: Request, trustedHeader?: string): string {
  if (trustedHeader !== undefined) {
    const given = request.headers.get(trustedHeader);
    if (given !== null) {
      const first = given.split(",", 1)[0]!.trim();
      if (IP_CHARS.test(first)) return first;
    }
  }
  return socketAddresses.get(request) ?? "unknown";
}
