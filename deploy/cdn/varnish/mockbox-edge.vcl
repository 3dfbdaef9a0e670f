# MockBox edge logic for Varnish 7 (vcl 4.1), included by a main file that defines the
# backends, a director named `mockbox`, the `purgers` ACL and `sub mockbox_edge_name`
# (see default.vcl, and deploy/local/run.py which writes one for the local proof).
#
# - caches only what MockBox marks with `s-maxage` (mocks and cache rules with cdn_ttl);
# - tells MockBox the client's address in X-Forwarded-For, overwritten here so a client cannot
#   choose it (MockBox believes it only from the edge's address: rate_limit.trusted_proxies);
# - adds X-Edge-Region and X-Edge-Cache (HIT/MISS) to answers;
# - retries another region when one fails between two health probes;
# - purge by tag: `BAN /` with `X-Purge-Tag: <tag>` bans every object whose Surrogate-Key
#   names the tag (MockBox sends these when a mock changes); PURGE drops one URL.


sub vcl_recv {
    if (req.method == "BAN" || req.method == "PURGE") {
        if (client.ip !~ purgers) {
            return (synth(405, "Purging is not allowed from " + client.ip));
        }
        if (req.method == "PURGE") {
            return (purge);
        }
        if (!req.http.X-Purge-Tag) {
            return (synth(400, "BAN needs an X-Purge-Tag header"));
        }
        ban("obj.http.Surrogate-Key ~ (^|\s)" + req.http.X-Purge-Tag + "(\s|$)");
        return (synth(200, "Banned " + req.http.X-Purge-Tag));
    }
    set req.backend_hint = mockbox.backend();
    set req.http.X-Forwarded-For = client.ip;
    call mockbox_edge_name;
    if (req.method != "GET" && req.method != "HEAD") {
        return (pass);
    }
    if (req.http.Authorization) {
        return (pass);
    }
    return (hash);
}

sub vcl_backend_response {
    # Only what the origin explicitly shares with a CDN is cached here.
    if (beresp.http.Cache-Control !~ "s-maxage=[1-9]") {
        set beresp.uncacheable = true;
        set beresp.ttl = 30s;
        return (deliver);
    }
    # Keep serving a cached answer briefly if every region is down.
    set beresp.grace = 1m;
    return (deliver);
}

sub vcl_backend_error {
    # A region that died since the last probe: try the next one before failing the client.
    if (bereq.retries < 2) {
        return (retry);
    }
}

sub vcl_deliver {
    set resp.http.X-Edge-Region = req.http.X-Edge-Region;
    if (obj.hits > 0) {
        set resp.http.X-Edge-Cache = "HIT";
    } else {
        set resp.http.X-Edge-Cache = "MISS";
    }
    unset resp.http.Surrogate-Key;
    unset resp.http.Via;
    unset resp.http.X-Varnish;
}
