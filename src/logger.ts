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

export function createLogger(log: TumblerdConfig['log'], levelOverride?: string): winston.Logger {
  const format = winston.format.combine(
    winston.format.timestamp(),
    log.format === 'json' ? winston.format.json() : text,
  );
  const transports: winston.transport[] = [new winston.transports.Console({ stderrLevels: ['error', 'warn'] })];
  if (log.file) transports.push(new winston.transports.File({ filename: log.file }));
  return winston.createLogger({ level: levelOverride ?? log.level, format, transports });
}
