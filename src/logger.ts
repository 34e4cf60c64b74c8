/** winston, set up the way a daemon's log is read: one line per event, key=value details. */
import winston from 'winston';
import { TumblerdConfig } from './config/types';

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

/** The log file, opened anew (after logrotate moved it: SIGHUP). */
export function fileTransport(file: string): winston.transport {
  return new winston.transports.File({ filename: file, ...ALWAYS });
}

export function createLogger(log: TumblerdConfig['log'], levelOverride?: string): winston.Logger {
  const format = winston.format.combine(
    winston.format.timestamp(),
    log.format === 'json' ? winston.format.json() : text,
  );
  const transports: winston.transport[] = [new winston.transports.Console({ stderrLevels: ['error', 'warn'], ...ALWAYS })];
  if (log.file) transports.push(fileTransport(log.file));
  return winston.createLogger({ level: levelOverride ?? log.level, format, transports, exitOnError: true });
}
