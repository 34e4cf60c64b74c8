/**
 * Run by `npm run build`: compiles config/tumblerd.schema.json into a standalone validator beside
 * the built config loader (dist/config/schemaValidator.js), so that starting tumblerd compiles no
 * schema and loads no Ajv compiler. The schema file stays the one source of truth.
 */
const fs = require('node:fs');
const path = require('node:path');
const Ajv = require('ajv');
const standalone = require('ajv/dist/standalone').default;
const { AJV_OPTIONS } = require('../dist/config/schemaOptions');

const root = path.join(__dirname, '..');
const schema = JSON.parse(fs.readFileSync(path.join(root, 'config', 'tumblerd.schema.json'), 'utf8'));
const ajv = new Ajv({ ...AJV_OPTIONS, code: { source: true } });
fs.writeFileSync(path.join(root, 'dist', 'config', 'schemaValidator.js'), standalone(ajv, ajv.compile(schema)));
