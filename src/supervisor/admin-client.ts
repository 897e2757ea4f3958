// The other end of the admin interface (admin.ts): one JSON request line,
// one JSON reply line. Used by the kv CLI, the benchmark and the tests.

import { connect } from 'node:net';

export function adminRequest(port: number, req: object, host = '127.0.0.1', timeoutMs = 5000): Promise<any> {
  return new Promise((resolve, reject) => {
    const s = connect(port, host);
    let buf = '';
    s.setEncoding('utf8');
    s.setTimeout(timeoutMs, () => {
      s.destroy();
      reject(new Error(`admin port ${host}:${port} did not answer in ${timeoutMs} ms`));
    });
    s.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        s.end();
        try {
          resolve(JSON.parse(buf.slice(0, nl)));
        } catch {
          reject(new Error(`admin port ${host}:${port} answered with something that is not JSON`));
        }
      }
    });
    s.on('error', (e) => reject(new Error(`admin port ${host}:${port}: ${e.message}`)));
    s.write(JSON.stringify(req) + '\n');
  });
}
