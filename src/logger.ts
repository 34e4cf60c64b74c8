/** winston, set up the way a daemon's log is read: one line per event, key=value details. */
import winston from 'winston';
import { TumblerdConfig } from './config/types';

type LogConfig = TumblerdConfig['log'];

const text = winston.format.printf(({ timestamp, level, message, ...meta }) => {
  const details = Object.entries(meta)
    .filter(([k]) => typeof k === 'string')
    .map(([k, v]) => `${k}=${typeof v === 'string' && !/[\s"=]/.test(v) && v !== '' ? v : JSON.stringify(v)}`)
    .join(' ');
  return `${timestamp} ${level}: ${message}${details ? ' ' + details : ''}`;
});

/* a crash is logged where the sysadmin looks, then the process exits for systemd to restart it;
 * the state file lets the next start close what this one opened */
const ALWAYS = { handleExceptions: true, handleRejections: true };

function formatOf(log: LogConfig): winston.Logform.Format {
  return winston.format.combine(winston.format.timestamp(), log.format === 'json' ? winston.format.json() : text);
}

function fileTransport(file: string): winston.transport {
  return new winston.transports.File({ filename: file, ...ALWAYS });
}

export function createLogger(log: LogConfig, levelOverride?: string): winston.Logger {
  const transports: winston.transport[] = [new winston.transports.Console({ stderrLevels: ['error', 'warn'], ...ALWAYS })];
  if (log.file) transports.push(fileTransport(log.file));
  return winston.createLogger({ level: levelOverride ?? log.level, format: formatOf(log), transports, exitOnError: true });
}

/**
 * Applies a (re)loaded log config to a running logger: level, format, and the log file, which
 * is also opened anew (after logrotate moved it: SIGHUP). A level given on the command line wins.
 */
export function reconfigureLogger(logger: winston.Logger, log: LogConfig, levelOverride?: string): void {
  logger.level = levelOverride ?? log.level;
  logger.format = formatOf(log);
  for (const t of logger.transports) {
    if (t instanceof winston.transports.File) logger.remove(t);
  }
  if (log.file) logger.add(fileTransport(log.file));
}
