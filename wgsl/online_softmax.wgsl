// online_softmax.wgsl — one invocation's running softmax over a stream of attention logits, shared by
// attention.wgsl and kv_quant_attend.wgsl, so every segment kind (full, thin, quantized, ring) updates
// the same state and a layer's segments make one softmax. The includer keeps the weighted value sum
// `acc` (Σ exp(s − m_run)·v) and scales it by what these functions return.

const NEG_BIG: f32 = -3.0e38; // "−∞" for the running max: exp(NEG_BIG − s) = 0 without inf − inf

var<private> m_run: f32; // max logit so far
var<private> l_run: f32; // Σ exp(s − m_run)

fn softmax_reset() {
  m_run = NEG_BIG;
  l_run = 0.0;
}

// Adds logit s; returns (alpha, e) for acc = acc·alpha + e·v.
fn softmax_push(s: f32) -> vec2<f32> {
  let m_new = max(m_run, s);
  let alpha = exp(m_run - m_new);
  let e = exp(s - m_new);
  l_run = l_run * alpha + e;
  m_run = m_new;
  return vec2<f32>(alpha, e);
}

// Raises the running max to m_block (the max of a block of logits the caller adds itself, with
// exp(s − m_run) into l_run); returns the factor acc must be scaled by.
fn softmax_rescale(m_block: f32) -> f32 {
  let m_new = max(m_run, m_block);
  let alpha = exp(m_run - m_new);
  l_run *= alpha;
  m_run = m_new;
  return alpha;
}
