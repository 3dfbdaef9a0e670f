vcl 4.1;
# A self-hosted edge in front of three MockBox regions. Copy and set your own addresses.
#   varnishd -f /etc/varnish/default.vcl -a :80 -s malloc,256m
# The local proof (deploy/local/run.py) writes the same file with 127.0.0.1 ports.

import directors;

probe mockbox_health {
    .url = "/__mockbox/healthz";
    .interval = 2s;
    .timeout = 1s;
    .window = 3;
    .threshold = 2;
}

backend iad { .host = "mockbox-iad.internal"; .port = "8080"; .probe = mockbox_health; }
backend fra { .host = "mockbox-fra.internal"; .port = "8080"; .probe = mockbox_health; }
backend sin { .host = "mockbox-sin.internal"; .port = "8080"; .probe = mockbox_health; }

acl purgers {
    "127.0.0.1";
    "10.0.0.0"/8;    # the MockBox instances, which purge when a mock changes
}

sub vcl_init {
    new mockbox = directors.round_robin();
    mockbox.add_backend(iad);
    mockbox.add_backend(fra);
    mockbox.add_backend(sin);
}

sub mockbox_edge_name {
    set req.http.X-Edge-Region = "edge-1";
}

include "mockbox-edge.vcl";
