// TEMPORARY until i16-sym's Symbolizer is merged: resolves nothing.
import type { SymbolSource } from './stacks.js';
export const librarySymbols: SymbolSource = { kernel: () => ({ resolve: () => undefined }), process: () => undefined };
