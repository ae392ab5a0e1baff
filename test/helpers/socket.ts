/** Raw socket exchanges for what fetch and node:http never send (no Host header, a Unix socket's command). */
import { connect, type NetConnectOpts } from "node:net";

/** Writes `text`, ends the writing side and resolves with everything the peer sends until it closes. */
export function socketExchange(target: NetConnectOpts, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(target, () => socket.end(text));
    let reply = "";
    socket.on("data", (d: Buffer) => {
      reply += d.toString();
    });
    socket.on("end", () => resolve(reply));
    socket.on("error", reject);
  });
}
