// stream_read: the roofline of the matmul kernels. Reads a buffer once, as fast as a WGSL kernel
// can, and writes one word per invocation (the XOR of everything it read) so nothing is optimized
// away. Each invocation streams its own contiguous chunk of PER vec4<u32> (4 per iteration): on
// llvmpipe every storage load is a loop over the SIMD lanes, so this is the design that wins there
// (measured per core, Vulkan lavapipe: 6.3 GB/s with PER = 1024; f32 adds instead of XOR 5.9 GB/s;
// PER = 256 5.4 GB/s; one vec4 per iteration 5.4 GB/s).
//
// Bindings: 0 uniform P { n4: vec4 count to read, a multiple of 4 }, 1 source, 2 out (u32 per
// invocation).

{{PARAMS}}

@group(0) @binding(0) var<uniform> P: StreamParams;
@group(0) @binding(1) var<storage, read> Src: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> Out: array<u32>;

override WG: u32 = 64;
override PER: u32 = 1024; // vec4 per invocation, a multiple of 4

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid;
  let start = i * PER;
  if (start >= P.n4) {
    return;
  }
  let end = min(start + PER, P.n4);
  var a = vec4<u32>(0u);
  for (var k = start; k < end; k += 4u) {
    a ^= Src[k];
    a ^= Src[k + 1u];
    a ^= Src[k + 2u];
    a ^= Src[k + 3u];
  }
  Out[i] = a.x ^ a.y ^ a.z ^ a.w;
}
