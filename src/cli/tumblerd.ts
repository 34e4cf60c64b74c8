#!/usr/bin/env node
/** tumblerd: the daemon, and the commands a sysadmin runs around it. */
import { Command, Option } from 'commander';
import { ConfigError, loadConfigFile } from '../config/load';
import { TumblerdConfig } from '../config/types';
import { formatScanReport, scanLogs } from './scan';

export const DEFAULT_CONFIG = '/etc/tumblerd.yaml';

function loadOrExit(file: string): TumblerdConfig {
  try {
    return loadConfigFile(file);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`tumblerd: the config has ${err.problems.length} error(s):\n${err.message}\n`);
    process.exit(2);
  }
}

function summary(c: TumblerdConfig): string {
  const seq = c.doors.filter((d) => d.sequence).length;
  const sec = c.doors.filter((d) => d.secret).length;
  return (
    `${c.file}: OK: ${c.doors.length} door(s) (${seq} with a knock sequence, ${sec} with a Tumbler secret), ` +
    `${c.sources.length} log source(s), Tumbler on ${c.tumbler.listen.map((l) => `${l.host}:${l.port}`).join(' ') || 'nothing'}`
  );
}

const program = new Command('tumblerd')
  .description('Secure port-knocking daemon: opens doors for classic knocks read from the firewall log and for Tumbler knocks')
  .enablePositionalOptions()
  .option('-c, --config <file>', 'config file (YAML)', DEFAULT_CONFIG)
  .option('--check', 'validate the config, print a one-line summary or every error, and exit')
  .option('--dry-run', 'log the commands doors would run instead of running them')
  .addOption(new Option('--log-level <level>', 'log level, overriding the config').choices(['error', 'warn', 'info', 'verbose', 'debug']))
  .action(async (opts: { config: string; check?: boolean; dryRun?: boolean; logLevel?: string }) => {
    const config = loadOrExit(opts.config);
    if (opts.check) {
      process.stdout.write(summary(config) + '\n');
      return;
    }
    const { runDaemon } = await import('../daemon');
    await runDaemon({ configFile: opts.config, config, dryRun: !!opts.dryRun, logLevel: opts.logLevel });
  });

program
  .command('scan')
  .description('replay logs (plain or .gz) through the knock rules without running anything, and report which doors would have opened')
  .argument('<logfile...>', 'log files to read from the start')
  .option('-c, --config <file>', 'config file (YAML)', DEFAULT_CONFIG)
  .option('--json', 'print the report as JSON')
  .action(async (files: string[], opts: { config: string; json?: boolean }) => {
    const config = loadOrExit(opts.config);
    const report = await scanLogs(config, files);
    process.stdout.write((opts.json ? JSON.stringify(report, null, 2) : formatScanReport(config, report)) + '\n');
  });

program.parseAsync().catch((err: Error) => {
  process.stderr.write(`tumblerd: ${err.message}\n`);
  process.exit(1);
});
