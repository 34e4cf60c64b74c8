export async function runDaemon(_o: unknown): Promise<void> { throw new Error("not yet"); }
