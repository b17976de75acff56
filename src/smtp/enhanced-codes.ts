// smtp-server picks the enhanced status code (RFC 3463) of an application error from its reply
// code alone (554 → 5.6.0, even for "relay denied", which is 5.7.1). This shim lets an error
// message that starts with an enhanced code ("5.7.1 Relay access denied") use that code. It
// patches two methods of the library's connection class once; test/e2e/smtp-inbound.test.ts
// checks the codes on the wire, so an upgrade that breaks it fails the tests.

import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';

const ENHANCED = /^([245]\.\d{1,3}\.\d{1,3}) ([\s\S]*)$/;
let installed = false;

interface PatchableConnection {
  send(code: number, data?: unknown, context?: unknown): void;
  _getEnhancedStatusCode(code: number, context?: unknown): string;
  _useEnhancedStatusCodes(): boolean;
}

export function installEnhancedCodeShim(): void {
  if (installed) return;
  installed = true;
  const proto = (SMTPConnection as unknown as { prototype: PatchableConnection }).prototype;
  const originalSend = proto.send;
  const originalCode = proto._getEnhancedStatusCode;
  if (typeof originalSend !== 'function' || typeof originalCode !== 'function') {
    throw new Error('smtp-server changed its internals: update src/smtp/enhanced-codes.ts');
  }
  proto.send = function (this: PatchableConnection, code: number, data?: unknown, context?: unknown) {
    if (context === undefined && typeof data === 'string') {
      const match = ENHANCED.exec(data);
      if (match) return originalSend.call(this, code, match[2], { enhanced: match[1] });
    }
    return originalSend.call(this, code, data, context);
  };
  proto._getEnhancedStatusCode = function (this: PatchableConnection, code: number, context?: unknown) {
    if (context && typeof context === 'object' && 'enhanced' in context) {
      return this._useEnhancedStatusCodes() ? String((context as { enhanced: string }).enhanced) : '';
    }
    return originalCode.call(this, code, context);
  };
}
