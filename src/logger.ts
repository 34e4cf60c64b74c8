/** winston, set up the way a daemon's log is read: one line per event, key=value details. */
import fs from 'node:fs';
import winston from 'winston';
import { TumblerdConfig } from './config/types';
import { APPEND_FLAGS } from './util/atomicFile';

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

/** The log file's transport: a stream on a descriptor tumblerd opened itself, so that it can say how. */
class LogFileTransport extends winston.transports.Stream {}

/**
 * Opens `log.file` for appending, 0640, without following a symlink (root would append to
 * whatever it points at), and only if it is a plain file with no other name (a hard link to
 * /etc/shadow, say). winston's File transport opens by name, following links, 0644.
 */
export function openLogFile(file: string): number {
  const fd = fs.openSync(file, APPEND_FLAGS, 0o640);
  const st = fs.fstatSync(fd);
  if (!st.isFile() || st.nlink !== 1) {
    fs.closeSync(fd);
    throw new Error(`log.file ${file} is not a plain file with one name: not writing to it`);
  }
  if ((st.mode & 0o027) !== 0) fs.fchmodSync(fd, st.mode & 0o750);
  return fd;
}

function fileTransport(file: string): winston.transport {
  const stream = fs.createWriteStream('', { fd: openLogFile(file), flags: 'a' });
  return new LogFileTransport({ stream, ...ALWAYS });
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
    if (t instanceof LogFileTransport) {
      logger.remove(t);
      (t as unknown as { _stream: fs.WriteStream })._stream.end();
    }
  }
  if (log.file) logger.add(fileTransport(log.file));
}
