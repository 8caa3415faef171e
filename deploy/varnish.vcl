vcl 4.1;
# Varnish (with vmod xkey, from varnish-modules) in front of three feedgate
# instances: it caches public reads for their s-maxage, tags each object with
# the response's Surrogate-Key, and takes feedgate's purge hook, so a write
# purges exactly the pages it made stale:
#   FEEDGATE_CACHE__PURGE_URL=http://varnish/purge
# Used by deploy/compose.yaml as is; deploy/local-cluster.sh rewrites the three
# backend lines to local ports.

import directors;
import xkey;

probe healthz {
    .url = "/healthz";
    .interval = 2s;
    .timeout = 1s;
    .window = 3;
    .threshold = 2;
}

backend feedgate1 { .host = "feedgate1"; .port = "8080"; .probe = healthz; }
backend feedgate2 { .host = "feedgate2"; .port = "8080"; .probe = healthz; }
backend feedgate3 { .host = "feedgate3"; .port = "8080"; .probe = healthz; }

# Who may purge: the instances, on loopback or a private network.
acl purgers {
    "127.0.0.1";
    "::1";
    "10.0.0.0"/8;
    "172.16.0.0"/12;
    "192.168.0.0"/16;
}

sub vcl_init {
    new fleet = directors.round_robin();
    fleet.add_backend(feedgate1);
    fleet.add_backend(feedgate2);
    fleet.add_backend(feedgate3);
}

sub vcl_recv {
    if (req.url == "/purge") {
        if (req.method != "POST" && req.method != "PURGE") {
            return (synth(405));
        }
        if (client.ip !~ purgers) {
            return (synth(403));
        }
        if (!req.http.Surrogate-Key) {
            return (synth(400, "no Surrogate-Key header"));
        }
        set req.http.n-gone = xkey.purge(req.http.Surrogate-Key);
        return (synth(200, "purged " + req.http.n-gone));
    }
    set req.backend_hint = fleet.backend();
    # The built-in rules follow: only GET and HEAD without Authorization or
    # cookies are looked up in the cache; everything else passes.
}

sub vcl_backend_response {
    # xkey indexes objects by the space-separated xkey header.
    if (beresp.http.Surrogate-Key) {
        set beresp.http.xkey = beresp.http.Surrogate-Key;
    }
}

sub vcl_deliver {
    unset resp.http.xkey;
}
