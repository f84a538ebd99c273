import type { IncomingMessage } from 'node:http';

/**
 * Reads a request's whole body and puts it back on the stream (`unshift`, before the stream
 * has emitted 'end'), so whoever handles the request next (the engine's own body parser,
 * express's form parser) reads it as if nothing had: the gate sees the raw bytes, and the
 * body is still parsed once, by its usual parser. Answers `undefined` when the body is larger
 * than `limit` (it is then left unread) or the request ends before its body does.
 *
 * Only buffered bytes are read (`read(readableLength)`), never past the end: a read at the end
 * would emit 'end', after which nothing can be put back and the engine would see no body.
 */
export function readBodyAhead(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  const declared = Number(req.headers['content-length'] ?? Number.NaN);
  if (declared > limit) return Promise.resolve(undefined);
  if (declared === 0) return Promise.resolve(Buffer.alloc(0));
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let received = 0;
    const finish = (body: Buffer | undefined) => {
      req.off('readable', step);
      req.off('close', abandoned);
      if (body !== undefined && body.length > 0) req.unshift(body);
      // an empty chunked body has ended by now: the engine then falls back to `req.body` (docs/engine.md#mounting-and-request-bodies)
      else if (body !== undefined && !req.readable) Object.assign(req, { body });
      resolve(body);
    };
    const abandoned = () => finish(undefined);
    function step(): void {
      while (req.readableLength > 0) {
        const chunk = req.read(req.readableLength) as Buffer | null;
        if (chunk === null) break;
        chunks.push(chunk);
        received += chunk.length;
        if (received > limit) return finish(undefined);
      }
      // `complete`: the whole message has arrived, and all of it is in `chunks`
      if (req.complete) finish(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, received));
    }
    if (req.complete) return step();
    req.on('readable', step);
    req.on('close', abandoned);
  });
}
