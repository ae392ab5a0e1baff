/** Lets timers, I/O and abort signals run (the forward pass itself is synchronous). */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => {
    if (typeof setImmediate === "function") return void setImmediate(resolve);
    // Browsers: a nested setTimeout(0) waits at least 4 ms; a channel message is a new task at once.
    const channel = new MessageChannel();
    channel.port1.onmessage = () => {
      channel.port1.close();
      resolve();
    };
    channel.port2.postMessage(null);
  });
}
