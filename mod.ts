/**
 * thinkv: LLaMA-family GGUF models on WebGPU in Deno, every tensor operation in our own WGSL, with
 * KV-cache compression (ThinK key-channel pruning, token eviction, KIVI quantization).
 *
 * ```ts ignore
 * import { loadModel } from "@thinkv/thinkv";
 *
 * const model = await loadModel("stories260K.gguf", { contextLength: 512 });
 * const it = model.generate("Once upon a time", { maxTokens: 64, temperature: 0 });
 * let r = await it.next();
 * for (; !r.done; r = await it.next()) Deno.stdout.writeSync(new TextEncoder().encode(r.value));
 * console.log(r.value.decodeTokensPerSecond, "tokens/s");
 * model.dispose();
 * ```
 *
 * @module
 */

export { type KvStats, loadModel, type LoadOptions, Model, type TokenPick } from "./src/model/model.ts";
export type { GenerateOptions, GenerationStats, StopReason } from "./src/generate.ts";
export { argmax, Rng, type SamplingOptions, validateSampling } from "./src/sampling.ts";
export { type LlamaConfig, readLlamaConfig } from "./src/model/config.ts";
export { GgufFile, type GgufTensorInfo, type GgufValue } from "./src/model/gguf.ts";
export {
  type GgufMetadataEntry,
  type GgufTensorEntry,
  type GgufTypeName,
  writeGguf,
} from "./src/model/gguf_writer.ts";
export { GgmlType, tensorBytes, type TypeInfo } from "./src/model/quant.ts";
export { type Tokenizer, tokenizerFromGguf } from "./src/tokenizer/tokenizer.ts";
export { Gpu, type GpuCounters, type GpuOptions } from "./src/gpu/gpu.ts";
export {
  DeviceLostError,
  ModelFormatError,
  ShaderCompileError,
  WebGpuUnavailableError,
} from "./src/errors.ts";

// Lower-level building blocks, for callers that drive the GPU steps themselves.
export type { Binding, PipelineSpec } from "./src/gpu/gpu.ts";
export { type ParamFields, params, ParamStruct, type ScalarType } from "./src/gpu/params.ts";
export { type BatchInput, type Kernels, type LogitRows, RunState } from "./src/engine/forward.ts";
export type { LayerWeights, LlamaWeights, UploadProgress } from "./src/model/weights.ts";
export type { GpuWeight, GpuWeightChunk } from "./src/model/gpu_weight.ts";
export {
  describeKvOptions,
  EVICTION_POLICIES,
  type EvictionOptions,
  type EvictionPolicy,
  type KvFlags,
  type KvOptions,
  kvOptionsFromFlags,
  loadKvConfig,
  parseKvConfig,
  type PoolKind,
  QUANT_BITS,
  QUANT_DEFAULTS,
  type QuantOptions,
  type ResolvedEviction,
  type ResolvedKvOptions,
  type ResolvedQuant,
  type ResolvedThink,
  resolveKvOptions,
  type ThinkOptions,
} from "./src/kv/options.ts";
export {
  type KvBatch,
  KvCache,
  type KvCacheLimits,
  type KvLayer,
  type KvLayerStats,
  type KvPhase,
} from "./src/kv/cache.ts";
export { formatKvStats, formatKvSummary } from "./src/kv/stats.ts";
export {
  type KvSegment,
  type QuantFormat,
  type QuantLayout,
  quantLayout,
  type QuantStorage,
  type ScaleFormat,
  type SegmentBytes,
} from "./src/kv/segment.ts";
export {
  type CompressionPlan,
  keptChannels,
  type LayerPlan,
  type LayerQuantPlan,
  planCompression,
  pyramidBudgets,
  type QuantPlan,
  type Scoring,
} from "./src/kv/plan.ts";
export { type CopyRowsArgs, type QuantArgs, QuantKernel, type RowsArg } from "./src/kv/kernels/quant.ts";
export type {
  QuantAttentionArgs,
  QuantSegmentArgs,
  RingArgs,
  SegmentAttentionArgs,
  ThinSegmentArgs,
} from "./src/kernels/attention.ts";
export { ChatSession, type ChatSessionOptions } from "./src/chat/session.ts";
export { chatPromptIds, commonPrefix, fallbackChatFormat } from "./src/chat/prompt.ts";
export {
  type ChatFormat,
  type ChatMessage,
  renderChat,
  type RenderChatOptions,
} from "./src/chat/template.ts";
export { BpeTokenizer } from "./src/tokenizer/bpe.ts";
export { type Pretokenizer, pretokenizerFor } from "./src/tokenizer/pretokenize.ts";
export { SpmTokenizer } from "./src/tokenizer/spm.ts";
export { type SampleArgs, SampleKernel } from "./src/kernels/sample.ts";
export type { DecodeOptions, EncodeOptions } from "./src/tokenizer/tokenizer.ts";
export { Utf8StreamDecoder } from "./src/tokenizer/utf8_stream.ts";
export { type ArgmaxArgs, ArgmaxKernel } from "./src/kernels/argmax.ts";
export {
  type AttentionArgs,
  AttentionKernel,
  type AttentionOptions,
  type AttentionScratch,
  type AttentionScratchShape,
  type KvStoreArgs,
} from "./src/kernels/attention.ts";
export { type AddArgs, ElementwiseKernel, type SwigluArgs } from "./src/kernels/elementwise.ts";
export {
  type EmbeddingEncodeOptions,
  EmbeddingKernel,
  type EmbeddingKernelOptions,
} from "./src/kernels/embedding.ts";
export {
  type MatmulEncodeOptions,
  MatmulKernel,
  type MatmulKernelOptions,
  type MatmulPlan,
  type MatmulProduct,
  type MatmulRope,
} from "./src/kernels/matmul.ts";
export { fusionSuffix, type MatmulFusion, PLAIN } from "./src/kernels/matmul_fusion.ts";
export { type RmsNormArgs, RmsNormKernel } from "./src/kernels/rmsnorm.ts";
export { type RopeArgs, RopeKernel } from "./src/kernels/rope.ts";
export {
  type FamilyTime,
  formatProfile,
  GpuProfiler,
  type GpuProfilerOptions,
  type ProfileReport,
} from "./src/gpu/profile.ts";
export { StreamReadKernel, type StreamReadOptions } from "./src/kernels/stream_read.ts";
export {
  SYNTH_SHAPES,
  SYNTH_TYPES,
  type SynthOptions,
  type SynthPlan,
  synthPlan,
  type SynthProgress,
  type SynthShape,
  synthShape,
  type SynthTensor,
  writeSynthModel,
} from "./src/model/synth.ts";
export {
  type GgufHeader,
  ggufHeader,
  type GgufSink,
  type GgufTensorLayout,
  type GgufTensorSource,
  writeGgufStream,
} from "./src/model/gguf_writer.ts";
export {
  llama3RopeFactors,
  type Llama3RopeScaling,
  llama3ScaledFrequency,
} from "./src/model/rope_scaling.ts";
