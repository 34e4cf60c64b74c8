/**
 * Kernel messages from journald through `journalctl -k -f -o json`: each record says its
 * transport, so the parser tells a forged line from the kernel's.
 */
import { LineSource, SourceHooks } from './source';
import { SupervisedCommand } from './supervisedCommand';

export class JournaldSource implements LineSource {
  readonly name = 'journald';
  private readonly command: SupervisedCommand;

  constructor(hooks: SourceHooks, journalctl = 'journalctl') {
    this.command = new SupervisedCommand([journalctl, '-k', '-f', '-o', 'json', '-n', '0', '--no-pager'], hooks);
  }

  start(): void {
    this.command.start();
  }

  stop(): void {
    this.command.stop();
  }
}
