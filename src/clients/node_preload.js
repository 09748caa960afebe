// authlens preload for Node.js, loaded by `authlens run` through
// NODE_OPTIONS=--require. Node 20 ignores HTTPS_PROXY in both the built-in
// fetch (undici) and the http/https modules; this routes both through the
// proxy named in HTTPS_PROXY / HTTP_PROXY with CONNECT tunnels, loopback
// included, honouring NO_PROXY. Trust comes from NODE_EXTRA_CA_CERTS, which
// Node applies to every default TLS context. It only installs agents: no
// request is made, nothing is printed unless connecting to the proxy fails.
'use strict';

(function authlensPreload() {
  const net = require('node:net');
  const tls = require('node:tls');
  const http = require('node:http');
  const https = require('node:https');

  const env = process.env;
  const proxyUrl = env.HTTPS_PROXY || env.https_proxy || env.HTTP_PROXY || env.http_proxy;
  if (!proxyUrl) return;
  let proxy;
  try {
    proxy = new URL(proxyUrl);
  } catch {
    return;
  }
  if (proxy.protocol !== 'http:') return;
  const proxyHost = proxy.hostname.replace(/^\[|\]$/g, '');
  const proxyPort = Number(proxy.port || 80);

  const noProxy = (env.NO_PROXY || env.no_proxy || '')
    .split(/[\s,]+/)
    .map((entry) => entry.trim().toLowerCase())
    .filter(Boolean);

  function bare(host) {
    return String(host).toLowerCase().replace(/^\[|\]$/g, '').replace(/\.$/, '');
  }

  // curl's NO_PROXY meaning: `*` matches all, a name matches itself and its
  // subdomains (a leading dot is ignored), an optional :port narrows it.
  function bypassed(host, port) {
    const name = bare(host);
    if (name === proxyHost.toLowerCase() && Number(port) === proxyPort) return true;
    return noProxy.some((entry) => {
      if (entry === '*') return true;
      let pattern = entry;
      let wantPort = null;
      const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(entry);
      if (m) {
        pattern = m[1];
        wantPort = Number(m[2]);
      }
      if (wantPort !== null && wantPort !== Number(port)) return false;
      pattern = bare(pattern).replace(/^\*?\./, '');
      return name === pattern || name.endsWith('.' + pattern);
    });
  }

  function authority(host, port) {
    const name = bare(host);
    return (net.isIPv6(name) ? `[${name}]` : name) + ':' + port;
  }

  // Opens a CONNECT tunnel to host:port and hands the raw socket to `done`.
  function tunnel(host, port, done) {
    const target = authority(host, port);
    let finished = false;
    const finish = (err, socket) => {
      if (finished) return;
      finished = true;
      done(err, socket);
    };
    const req = http.request({
      host: proxyHost,
      port: proxyPort,
      method: 'CONNECT',
      path: target,
      headers: { host: target },
      agent: false,
    });
    req.once('connect', (res, socket, head) => {
      if (res.statusCode !== 200) {
        socket.destroy();
        finish(new Error(`authlens proxy ${proxyHost}:${proxyPort} refused CONNECT ${target}: ${res.statusCode}`));
        return;
      }
      if (head && head.length) socket.unshift(head);
      finish(null, socket);
    });
    req.once('error', (err) => {
      finish(new Error(`cannot reach the authlens proxy at ${proxyHost}:${proxyPort}: ${err.message}`));
    });
    req.end();
  }

  function serverName(host, explicit) {
    if (explicit) return explicit;
    const name = bare(host);
    return net.isIP(name) ? undefined : name;
  }

  // === http and https modules ===

  class TunnelAgent extends http.Agent {
    createConnection(options, callback) {
      const port = options.port || 80;
      if (bypassed(options.host, port)) return super.createConnection(options, callback);
      tunnel(options.host, port, callback);
      return undefined;
    }
  }

  class TlsTunnelAgent extends https.Agent {
    createConnection(options, callback) {
      const port = options.port || 443;
      if (bypassed(options.host, port)) return super.createConnection(options, callback);
      tunnel(options.host, port, (err, socket) => {
        if (err) {
          callback(err);
          return;
        }
        const secure = tls.connect({
          ...options,
          socket,
          servername: serverName(options.host, options.servername),
        });
        callback(null, secure);
      });
      return undefined;
    }
  }

  http.globalAgent = new TunnelAgent({ keepAlive: true });
  https.globalAgent = new TlsTunnelAgent({ keepAlive: true });

  // === fetch ===
  // Node bundles undici but does not expose it. Its global dispatcher lives
  // under a well-known symbol once fetch has loaded; undici's own Agent class
  // accepts a `connect` function, which is where the tunnel goes.

  const dispatcherKey = Symbol.for('undici.globalDispatcher.1');
  if (typeof globalThis.fetch !== 'function') return;
  if (!globalThis[dispatcherKey]) {
    // Calling fetch loads undici synchronously; a data: URL makes no request.
    globalThis.fetch('data:,').catch(() => {});
  }
  const current = globalThis[dispatcherKey];
  if (!current || typeof current.constructor !== 'function') return;
  const UndiciAgent = current.constructor;

  function connect(opts, callback) {
    const isTls = opts.protocol === 'https:';
    const port = Number(opts.port) || (isTls ? 443 : 80);
    const host = opts.hostname || opts.host;
    const direct = (raw) => {
      if (!isTls) return callback(null, raw);
      const secure = tls.connect({
        socket: raw,
        servername: serverName(host, opts.servername),
        ALPNProtocols: ['http/1.1'],
      });
      let done = false;
      secure.once('secureConnect', () => {
        if (!done) {
          done = true;
          callback(null, secure);
        }
      });
      secure.once('error', (err) => {
        if (!done) {
          done = true;
          callback(err);
        }
      });
    };
    if (bypassed(host, port)) {
      const raw = net.connect({ host: bare(host), port });
      raw.once('connect', () => direct(raw));
      raw.once('error', (err) => callback(err));
      return;
    }
    tunnel(host, port, (err, raw) => (err ? callback(err) : direct(raw)));
  }

  globalThis[dispatcherKey] = new UndiciAgent({ connect });
})();
