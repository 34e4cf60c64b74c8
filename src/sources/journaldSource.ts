/**
 * Kernel messages from journald through `journalctl -k -f -o json`: each record says its
 * transport and facility, so the parser tells a forged line from the kernel's.
 */
import { LineSource, SourceHooks } from './source';
import { SupervisedCommand } from './supervisedCommand';

export class JournaldSource implements LineSource {
  readonly name = 'journald';
  private readonly command: SupervisedCommand;

  constructor(hooks: SourceHooks, journalctl = 'journalctl') {
    /* -k is the kernel transport, which a line root writes to /dev/kmsg also has: only facility kern
     * is the kernel's own (the parser checks both again) */
    this.command = new SupervisedCommand([journalctl, '-k', '-f', '-o', 'json', '-n', '0', '--no-pager', 'SYSLOG_FACILITY=0'], hooks);
  }

  start(): void {
    this.command.start();
  }

  stop(): void {
    this.command.stop();
  }
}
