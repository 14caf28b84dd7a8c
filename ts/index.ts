// The package entry: everything users import. The addon stays internal.
export { BpfObject } from './object.js';
export type { BpfObjectOptions, BpfObjectState } from './object.js';
export { BpfMap, MapBatchCursor, UPDATE_FLAGS } from './map.js';
export type {
  MapKey, MapValue, MapLookupResult, MapUpdateOptions, MapCreateOptions, LookupResultOf, UpdateFlag,
  MapEntries, MapEntriesOptions, MapBatchOptions, MapColumns, MapUpdateBatchOptions, MapWatchOptions, MapChanges, RawOf, PerCpu, PerCpuElement, Encodable, MapKeyIn, MapValueIn,
  IdMapType, UnreadableMapType, InnerMapOptions, KeyOf,
} from './map.js';
export { BpfProgram } from './program.js';
export type { ProgramLoadOptions, TestRunOptions, TestRunResult, SocketLike } from './program.js';
export { BpfLink } from './link.js';
export { PERF_TYPES, PERF_CONFIGS } from './attach_options.js';
export type {
  KprobeOptions, KsyscallOptions, KprobeMultiOptions, UprobeOptions, UsdtOptions, PerfEventOptions, XdpOptions,
  TcOptions, CgroupOptions, SockmapOptions, IterOptions,
} from './attach_options.js';
export type { LinkType, AttachResult, SkippedProgram } from './link.js';
export { BpfError, VerifierError } from './errors.js';
export { RingBuffer } from './ring_buffer.js';
export type { RingBufferOptions, RingBufferStats, RingBufferConstructor, RingBufferImpl } from './ring_buffer.js';
export { UserRingBuffer } from './user_ring_buffer.js';
export type { UserRingBufferOptions, UserRingBufferSample, UserRingBufferConstructor, UserRingBufferImpl, UserRecord } from './user_ring_buffer.js';
export { NETFILTER_HOOKS, NETFILTER_FAMILIES } from './netfilter.js';
export type { NetfilterOptions, NetfilterHook, NetfilterFamily } from './netfilter.js';
export { PerfBuffer } from './perf_buffer.js';
export type { PerfBufferOptions, PerfBufferStats, PerfEvent, PerfSample, PerfLost, PerfBufferConstructor, PerfBufferImpl } from './perf_buffer.js';
export type { EventStreamOptions, EventStreamCounters, TypedStreamOptions } from './internal/stream.js';
export { RecordBatch } from './internal/stream.js';
export { struct, array, Layout } from './layout.js';
export type { LayoutValue, LayoutField, LayoutFieldValue, LayoutScalar, StructValue, StructOptions, ScalarValue, ScalarArray } from './layout.js';
export { openRawSocket } from './socket.js';
export { MAP_TYPES, PROG_TYPES, ATTACH_TYPES } from './types.js';
export type { MapType, ProgramType, AttachType, PerCpuMapType } from './types.js';
export * as asm from './asm.js';
export { Btf, BTF_KINDS } from './btf.js';
export { codecFor } from './codec.js';
export type { Globals } from './globals.js';
export { formatLog2Hist } from './histogram.js';
export { generateSkeleton } from './skeleton.js';
export { BpfSkeleton } from './skeleton_base.js';
export type { SkeletonOptions } from './skeleton.js';
export type { Codec, Decoded, DecodedTypedArray } from './codec.js';
export type { BtfType, BtfKind, BtfMember, BtfEnumValue, BtfParam, BtfVarInfo } from './btf.js';

import { addon } from './internal/addon.js';
/** The version of the system libbpf the addon is linked with, e.g. '1.1'. */
export const libbpfVersion: string = addon.libbpfVersion;
export { features } from './features.js';
export type { FeatureResult } from './features.js';
export { enableStats, StatsHandle, queryPrograms, queryXdp, queryTc } from './introspect.js';
export type { ProgramInfo, MapInfo, LinkInfo, QueryTarget, QueryResult, XdpQueryResult, TcFilter } from './introspect.js';
export type { DisassembleOptions } from './asm.js';
export { setLibbpfPrint } from './print.js';
export type { LibbpfPrintLevel, LibbpfPrintCallback, LibbpfPrintOptions } from './print.js';
export { tracePipe } from './trace_pipe.js';
export type { TracePipeLine, TracePipeOptions } from './trace_pipe.js';
export { decodeStack } from './stacks.js';
export type { StackTrace, DecodeStackOptions } from './stacks.js';
export { Symbolizer, KernelSymbolizer, ProcessSymbolizer, formatFrame } from './symbolize/index.js';
export type { Frame, FrameKind, KernelSymbolizerOptions, ProcessSymbolizerOptions, ProcessMapping } from './symbolize/index.js';
