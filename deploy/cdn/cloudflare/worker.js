// MockBox behind Cloudflare: a Worker in front of the regional MockBox origins.
//
// - caches answers MockBox marks with `s-maxage` (Cache API), keyed by URL;
// - passes the client's address to MockBox in X-Forwarded-For (MockBox believes it only from
//   Cloudflare's address ranges: set rate_limit.trusted_proxies to them);
// - adds X-Edge-Region (the Cloudflare colo) and X-Edge-Cache;
// - purge by tag: MockBox's Cache-Tag header lets Cloudflare's purge API target a host or a
//   mock (MockBox calls it when a mock changes; CLOUDFLARE_API_TOKEN and CLOUDFLARE_ZONE_ID).
//
// wrangler.toml sets ORIGIN to the MockBox load balancer, e.g. https://mockbox-origin.example.com

export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    const origin = new URL(url.pathname + url.search, env.ORIGIN);
    const headers = new Headers(request.headers);
    headers.set("X-Forwarded-For", request.headers.get("CF-Connecting-IP") || "");
    headers.set("X-Edge-Region", (request.cf && request.cf.colo) || "unknown");

    const cacheable = (request.method === "GET" || request.method === "HEAD")
      && !request.headers.has("Authorization");
    const cache = caches.default;
    const key = new Request(url.toString(), { method: "GET" });
    if (cacheable) {
      const hit = await cache.match(key);
      if (hit) return decorate(hit, "HIT", request);
    }
    const response = await fetch(origin.toString(), {
      method: request.method, headers, body: request.body, redirect: "manual",
    });
    const control = response.headers.get("Cache-Control") || "";
    if (cacheable && response.ok && /s-maxage=[1-9]/.test(control)) {
      ctx.waitUntil(cache.put(key, response.clone()));
    }
    return decorate(response, "MISS", request);
  },
};

function decorate(response, status, request) {
  const out = new Response(response.body, response);
  out.headers.set("X-Edge-Cache", status);
  out.headers.set("X-Edge-Region", (request.cf && request.cf.colo) || "unknown");
  out.headers.delete("Surrogate-Key");
  return out;
}
