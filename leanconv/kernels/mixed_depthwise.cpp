// Mixed depthwise convolution (MixConv, seed 001; a plain depthwise conv is one group) for
// fp32 CPU tensors, stride 1, dilation 1, "same" padding (k - 1) / 2, channel multiplier 1:
//
//   y[n, c, i, j] = b[c] + sum_{u, v < k_c} w[c, u, v] * x[n, c, i + u - p_c, j + v - p_c]
//
// where channel c belongs to group t and has kernel size k_c = k_t. Every group is computed
// in one pass over the input: no split, no concatenation, the input read once and the output
// written once.
//
// Both kernels copy the piece of input they work on into a zero-padded buffer that stays in
// the core's cache (no bounds checks in the inner loops) and keep a register tile of outputs:
//  * NCHW: a (R rows x 16*NV columns) tile of one channel plane, vectorised along the row.
//    Each loaded input vector is used by every output row of the tile it reaches (up to R
//    FMAs per load instead of one), each broadcast weight by NV vectors.
//  * channels_last: X pixels of one row x 16 channels, vectorised across channels (the
//    weights are vectors too); each loaded input vector serves up to k outputs of the tile.
//    The image is cut into bands of rows whose padded copy fits in 256 KB, so that large
//    images need no large buffer and batch 1 still has work for every thread.
// The vector type is GCC/Clang's generic vector extension: the compiler emits AVX-512, AVX2 or
// SSE code for the machine the extension is built on (leanconv/kernels/build.py).

#include <ATen/ATen.h>
#include <torch/library.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstring>
#include <vector>

namespace {

constexpr int kLanes = 16;
typedef float vec __attribute__((vector_size(kLanes * sizeof(float))));
typedef float vec_unaligned __attribute__((vector_size(kLanes * sizeof(float)), aligned(4), may_alias));

inline vec load(const float* p) { return *reinterpret_cast<const vec_unaligned*>(p); }
inline void store(float* p, vec v) { *reinterpret_cast<vec_unaligned*>(p) = v; }
inline vec broadcast(float s) { return s - vec{}; }

// ---------------------------------------------------------------------------------- NCHW --

constexpr int kRows = 4;  // output rows per register tile

// R x (16 * NV) outputs; `in` points at the tile's top-left input in the padded plane.
template <int K, int NV>
inline void plane_tile(const float* in, int pitch, const float* w, float bias, float* out,
                       int out_pitch) {
  vec acc[kRows][NV];
  for (int r = 0; r < kRows; ++r)
    for (int v = 0; v < NV; ++v) acc[r][v] = broadcast(bias);
#pragma GCC unroll 16
  for (int kx = 0; kx < K; ++kx) {
    vec wk[K];
    for (int ky = 0; ky < K; ++ky) wk[ky] = broadcast(w[ky * K + kx]);
#pragma GCC unroll 16
    for (int t = 0; t < kRows + K - 1; ++t) {
      vec in_v[NV];
      for (int v = 0; v < NV; ++v) in_v[v] = load(in + t * pitch + kx + kLanes * v);
#pragma GCC unroll 8
      for (int r = 0; r < kRows; ++r) {
        const int ky = t - r;
        if (ky >= 0 && ky < K)
          for (int v = 0; v < NV; ++v) acc[r][v] += wk[ky] * in_v[v];
      }
    }
  }
  for (int r = 0; r < kRows; ++r)
    for (int v = 0; v < NV; ++v) store(out + r * out_pitch + kLanes * v, acc[r][v]);
}

struct PlaneGeometry {
  int tile_w, tile_h, pitch, rows;  // output grid rounded up to tiles; padded input
  PlaneGeometry(int h, int w, int k, int nv) {
    const int cols = kLanes * nv;
    tile_w = (w + cols - 1) / cols * cols;
    tile_h = (h + kRows - 1) / kRows * kRows;
    pitch = tile_w + k - 1;
    rows = tile_h + k - 1;
  }
  int64_t floats() const { return int64_t(pitch) * rows + int64_t(tile_w) * tile_h; }
};

template <int K, int NV>
void conv_plane(const float* x, const float* w, float bias, float* y, int h, int w_,
                float* buf) {
  constexpr int P = (K - 1) / 2;
  const PlaneGeometry g(h, w_, K, NV);
  // zero the padding (top and bottom rows, left and right columns), copy the interior
  std::memset(buf, 0, sizeof(float) * P * g.pitch);
  std::memset(buf + (P + h) * g.pitch, 0, sizeof(float) * (g.rows - P - h) * g.pitch);
  for (int r = 0; r < h; ++r) {
    float* row = buf + (r + P) * g.pitch;
    std::memset(row, 0, sizeof(float) * P);
    std::memcpy(row + P, x + int64_t(r) * w_, sizeof(float) * w_);
    std::memset(row + P + w_, 0, sizeof(float) * (g.pitch - P - w_));
  }
  float* out = buf + int64_t(g.pitch) * g.rows;
  for (int r0 = 0; r0 < g.tile_h; r0 += kRows)
    for (int c0 = 0; c0 < g.tile_w; c0 += kLanes * NV)
      plane_tile<K, NV>(buf + r0 * g.pitch + c0, g.pitch, w, bias, out + r0 * g.tile_w + c0,
                        g.tile_w);
  for (int r = 0; r < h; ++r)
    std::memcpy(y + int64_t(r) * w_, out + r * g.tile_w, sizeof(float) * w_);
}

template <int NV>
void conv_plane_k(int k, const float* x, const float* w, float bias, float* y, int h, int w_,
                  float* buf) {
  switch (k) {
    case 1: return conv_plane<1, NV>(x, w, bias, y, h, w_, buf);
    case 3: return conv_plane<3, NV>(x, w, bias, y, h, w_, buf);
    case 5: return conv_plane<5, NV>(x, w, bias, y, h, w_, buf);
    case 7: return conv_plane<7, NV>(x, w, bias, y, h, w_, buf);
    case 9: return conv_plane<9, NV>(x, w, bias, y, h, w_, buf);
    default: return conv_plane<11, NV>(x, w, bias, y, h, w_, buf);
  }
}

void forward_nchw(const float* x, float* y, int64_t n, int64_t c, int h, int w,
                  const std::vector<int>& kernel, const std::vector<const float*>& weight,
                  const float* bias) {
  const int k_max = *std::max_element(kernel.begin(), kernel.end());
  const int nv = w <= kLanes ? 1 : 2;
  const int64_t buf_floats = PlaneGeometry(h, w, k_max, nv).floats();
  const int64_t hw = int64_t(h) * w;
  at::parallel_for(0, n * c, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> buf(buf_floats);
    for (int64_t i = begin; i < end; ++i) {
      const int64_t ch = i % c;
      const float b = bias ? bias[ch] : 0.f;
      if (nv == 1)
        conv_plane_k<1>(kernel[ch], x + i * hw, weight[ch], b, y + i * hw, h, w, buf.data());
      else
        conv_plane_k<2>(kernel[ch], x + i * hw, weight[ch], b, y + i * hw, h, w, buf.data());
    }
  });
}

// ------------------------------------------------------------------------- channels_last --

constexpr int kPixels = 8;  // output pixels of one row per register tile

// kPixels outputs of one row, 16 channels; `in` points at the tile's input row start (ky = 0)
// in the padded block (pixel pitch 16 floats), `wv` at the K*K weight vectors.
template <int K>
inline void pixel_tile(const float* in, int row_pitch, const float* wv, vec bias, vec* acc) {
  for (int i = 0; i < kPixels; ++i) acc[i] = bias;
  for (int ky = 0; ky < K; ++ky) {
    vec wk[K];
    for (int kx = 0; kx < K; ++kx) wk[kx] = load(wv + (ky * K + kx) * kLanes);
    const float* row = in + ky * row_pitch;
#pragma GCC unroll 32
    for (int j = 0; j < kPixels + K - 1; ++j) {
      const vec in_v = load(row + j * kLanes);
#pragma GCC unroll 16
      for (int kx = 0; kx < K; ++kx) {
        const int i = j - kx;
        if (i >= 0 && i < kPixels) acc[i] += wk[kx] * in_v;
      }
    }
  }
}

struct Block {
  int64_t c0;       // first channel
  int lanes, k;     // channels in the block (<= 16), kernel size
  int64_t packed;   // offset of its k*k weight vectors and bias vector in the packed weights
};

// Rows [r0, r1) of one image x one block of <= 16 channels: copy the input rows they read
// into a zero-padded buffer (pixel pitch 16 floats), then convolve row by row.
template <int K>
void conv_band(const float* x, float* y, int64_t c, int h, int w, int r0, int r1,
               const Block& blk, const float* packed, float* buf) {
  constexpr int P = (K - 1) / 2;
  const int tile_w = (w + kPixels - 1) / kPixels * kPixels;
  const int pw = tile_w + K - 1;
  const int row_pitch = pw * kLanes;
  for (int i = 0; i < r1 - r0 + K - 1; ++i) {
    float* row = buf + int64_t(i) * row_pitch;
    const int r = r0 - P + i;
    if (r < 0 || r >= h) {
      std::memset(row, 0, sizeof(float) * row_pitch);
      continue;
    }
    std::memset(row, 0, sizeof(float) * P * kLanes);
    std::memset(row + (P + w) * kLanes, 0, sizeof(float) * (pw - P - w) * kLanes);
    const float* src = x + int64_t(r) * w * c + blk.c0;
    if (blk.lanes == kLanes) {
      for (int j = 0; j < w; ++j) store(row + (j + P) * kLanes, load(src + j * c));
    } else {
      for (int j = 0; j < w; ++j) {
        vec v = {};
        for (int l = 0; l < blk.lanes; ++l) v[l] = src[j * c + l];
        store(row + (j + P) * kLanes, v);
      }
    }
  }
  const float* wv = packed + blk.packed;
  const vec b = load(wv + K * K * kLanes);
  vec acc[kPixels];
  for (int r = r0; r < r1; ++r)
    for (int j0 = 0; j0 < w; j0 += kPixels) {
      pixel_tile<K>(buf + int64_t(r - r0) * row_pitch + j0 * kLanes, row_pitch, wv, b, acc);
      const int count = std::min(kPixels, w - j0);
      float* out = y + (int64_t(r) * w + j0) * c + blk.c0;
      if (blk.lanes == kLanes) {
        for (int i = 0; i < count; ++i) store(out + i * c, acc[i]);
      } else {
        for (int i = 0; i < count; ++i)
          for (int l = 0; l < blk.lanes; ++l) out[i * c + l] = acc[i][l];
      }
    }
}

void conv_band_k(const float* x, float* y, int64_t c, int h, int w, int r0, int r1,
                 const Block& blk, const float* packed, float* buf) {
  switch (blk.k) {
    case 1: return conv_band<1>(x, y, c, h, w, r0, r1, blk, packed, buf);
    case 3: return conv_band<3>(x, y, c, h, w, r0, r1, blk, packed, buf);
    case 5: return conv_band<5>(x, y, c, h, w, r0, r1, blk, packed, buf);
    case 7: return conv_band<7>(x, y, c, h, w, r0, r1, blk, packed, buf);
    case 9: return conv_band<9>(x, y, c, h, w, r0, r1, blk, packed, buf);
    default: return conv_band<11>(x, y, c, h, w, r0, r1, blk, packed, buf);
  }
}

constexpr int64_t kBandFloats = 64 * 1024;  // padded input of one band: 256 KB, in L2

// Work items: image x band of rows x channel block, blocks innermost so that consecutive
// items read and write neighbouring cache lines of the same rows.
void forward_channels_last(const float* x, float* y, int64_t n, int64_t c, int h, int w,
                           const std::vector<Block>& blocks, int k_max,
                           const float* packed) {
  const int tile_w = (w + kPixels - 1) / kPixels * kPixels;
  const int64_t row_floats = int64_t(tile_w + k_max - 1) * kLanes;
  const int band = static_cast<int>(
      std::clamp<int64_t>(kBandFloats / row_floats - (k_max - 1), 1, h));
  const int64_t bands = (h + band - 1) / band;
  const int64_t nb = static_cast<int64_t>(blocks.size());
  const int64_t image = int64_t(h) * w * c;
  at::parallel_for(0, n * bands * nb, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> buf((band + k_max - 1) * row_floats);
    for (int64_t i = begin; i < end; ++i) {
      const Block& blk = blocks[i % nb];
      const int64_t img = i / (nb * bands);
      const int r0 = static_cast<int>((i / nb) % bands) * band;
      conv_band_k(x + img * image, y + img * image, c, h, w, r0, std::min(h, r0 + band), blk,
                  packed, buf.data());
    }
  });
}

// ------------------------------------------------------------- weight gradient (NCHW) --
//
//   dw[c, u, v] = sum_{n, i, j} dy[n, c, i, j] * x[n, c, i + u - p, j + v - p]
//
// One channel per work item (the sum over the batch stays inside it, no reduction between
// threads). Each image's plane is copied into a zero-padded buffer and its dy plane into one
// whose rows are padded with zeros to whole vectors; for each kernel row u, k vector
// accumulators collect the products of a dy vector with the k shifted x vectors.

template <int K>
void weight_grad_channel(const float* x, const float* dy, int64_t n, int64_t chw, int h,
                         int w, float* dw, float* buf) {
  constexpr int P = (K - 1) / 2;
  const int tile_w = (w + kLanes - 1) / kLanes * kLanes;
  const int pitch = tile_w + K - 1, rows = h + K - 1;
  float* xp = buf;
  float* gp = buf + int64_t(pitch) * rows;
  vec acc[K][K];
  for (int u = 0; u < K; ++u)
    for (int v = 0; v < K; ++v) acc[u][v] = vec{};
  for (int64_t img = 0; img < n; ++img) {
    const float* xi = x + img * chw;
    const float* gi = dy + img * chw;
    std::memset(xp, 0, sizeof(float) * pitch * rows);
    for (int r = 0; r < h; ++r) {
      std::memcpy(xp + (r + P) * pitch + P, xi + int64_t(r) * w, sizeof(float) * w);
      std::memcpy(gp + r * tile_w, gi + int64_t(r) * w, sizeof(float) * w);
      std::memset(gp + r * tile_w + w, 0, sizeof(float) * (tile_w - w));
    }
    for (int u = 0; u < K; ++u)
      for (int r = 0; r < h; ++r)
        for (int j = 0; j < tile_w; j += kLanes) {
          const vec g = load(gp + r * tile_w + j);
          const float* src = xp + (r + u) * pitch + j;
#pragma GCC unroll 16
          for (int v = 0; v < K; ++v) acc[u][v] += g * load(src + v);
        }
  }
  for (int u = 0; u < K; ++u)
    for (int v = 0; v < K; ++v) {
      float sum = 0.f;
      for (int l = 0; l < kLanes; ++l) sum += acc[u][v][l];
      dw[u * K + v] = sum;
    }
}

void weight_grad_k(int k, const float* x, const float* dy, int64_t n, int64_t chw, int h, int w,
                   float* dw, float* buf) {
  switch (k) {
    case 1: return weight_grad_channel<1>(x, dy, n, chw, h, w, dw, buf);
    case 3: return weight_grad_channel<3>(x, dy, n, chw, h, w, dw, buf);
    case 5: return weight_grad_channel<5>(x, dy, n, chw, h, w, dw, buf);
    case 7: return weight_grad_channel<7>(x, dy, n, chw, h, w, dw, buf);
    case 9: return weight_grad_channel<9>(x, dy, n, chw, h, w, dw, buf);
    default: return weight_grad_channel<11>(x, dy, n, chw, h, w, dw, buf);
  }
}

}  // namespace

// x: (N, C, H, W) fp32, contiguous or channels_last; weights[t]: (c_t, 1, k_t, k_t) with
// sum c_t = C and k_t in {1, 3, 5, 7, 9, 11}; bias: (C,) or None. Returns y in x's layout.
at::Tensor mixed_depthwise_conv2d(const at::Tensor& x, at::TensorList weights,
                                  const std::optional<at::Tensor>& bias) {
  TORCH_CHECK(x.dim() == 4 && x.scalar_type() == at::kFloat && x.device().is_cpu(),
              "mixed_depthwise_conv2d: x must be a 4-d float32 CPU tensor");
  const bool channels_last = !x.is_contiguous() &&
                             x.is_contiguous(at::MemoryFormat::ChannelsLast);
  TORCH_CHECK(channels_last || x.is_contiguous(),
              "mixed_depthwise_conv2d: x must be contiguous or channels_last");
  const int64_t n = x.size(0), c = x.size(1);
  const int h = static_cast<int>(x.size(2)), w = static_cast<int>(x.size(3));
  std::vector<int> kernel;             // per channel: kernel size
  std::vector<const float*> weight;    // per channel: its k*k weights
  int k_max = 1;
  for (const at::Tensor& wt : weights) {
    const int k = static_cast<int>(wt.size(2));
    TORCH_CHECK(wt.dim() == 4 && wt.size(1) == 1 && wt.size(3) == k && wt.is_contiguous() &&
                    wt.scalar_type() == at::kFloat && (k == 1 || k == 3 || k == 5 || k == 7 ||
                                                       k == 9 || k == 11),
                "mixed_depthwise_conv2d: every weight must be a contiguous float32 "
                "(c_t, 1, k, k) tensor with k in {1, 3, 5, 7, 9, 11}");
    k_max = std::max(k_max, k);
    for (int64_t l = 0; l < wt.size(0); ++l) {
      kernel.push_back(k);
      weight.push_back(wt.data_ptr<float>() + l * k * k);
    }
  }
  TORCH_CHECK(static_cast<int64_t>(kernel.size()) == c,
              "mixed_depthwise_conv2d: the weights cover ", kernel.size(), " channels, x has ",
              c);
  const float* b = nullptr;
  if (bias.has_value()) {
    TORCH_CHECK(bias->dim() == 1 && bias->size(0) == c && bias->is_contiguous() &&
                    bias->scalar_type() == at::kFloat,
                "mixed_depthwise_conv2d: bias must be a contiguous float32 (C,) tensor");
    b = bias->data_ptr<float>();
  }
  at::Tensor y = at::empty_like(x);
  if (x.numel() == 0) return y;
  if (!channels_last) {
    forward_nchw(x.data_ptr<float>(), y.data_ptr<float>(), n, c, h, w, kernel, weight, b);
    return y;
  }
  // channels_last: blocks of <= 16 consecutive channels with the same kernel size, each with
  // its weights packed as k*k vectors (one lane per channel) followed by its bias vector
  std::vector<Block> blocks;
  std::vector<float> packed;
  for (int64_t c0 = 0; c0 < c;) {
    const int k = kernel[c0];
    int lanes = 0;
    while (lanes < kLanes && c0 + lanes < c && kernel[c0 + lanes] == k) ++lanes;
    const Block blk{c0, lanes, k, static_cast<int64_t>(packed.size())};
    packed.resize(packed.size() + (k * k + 1) * kLanes, 0.f);
    float* dst = packed.data() + blk.packed;
    for (int l = 0; l < lanes; ++l) {
      for (int t = 0; t < k * k; ++t) dst[t * kLanes + l] = weight[c0 + l][t];
      dst[k * k * kLanes + l] = b ? b[c0 + l] : 0.f;
    }
    blocks.push_back(blk);
    c0 += lanes;
  }
  forward_channels_last(x.data_ptr<float>(), y.data_ptr<float>(), n, c, h, w, blocks, k_max,
                        packed.data());
  return y;
}

// x, dy: (N, C, H, W) fp32 NCHW; kernel_sizes[t] and channels[t] describe the groups (as the
// forward's weights). Returns the weights' gradients, one (c_t, 1, k_t, k_t) tensor per group.
std::vector<at::Tensor> mixed_depthwise_conv2d_weight_grad(const at::Tensor& x,
                                                          const at::Tensor& dy,
                                                          at::IntArrayRef channels,
                                                          at::IntArrayRef kernel_sizes) {
  TORCH_CHECK(x.dim() == 4 && x.scalar_type() == at::kFloat && x.device().is_cpu() &&
                  x.is_contiguous() && dy.sizes() == x.sizes() && dy.is_contiguous() &&
                  dy.scalar_type() == at::kFloat,
              "mixed_depthwise_conv2d_weight_grad: x and dy must be contiguous float32 CPU "
              "tensors of the same (N, C, H, W) shape");
  TORCH_CHECK(channels.size() == kernel_sizes.size() && !channels.empty(),
              "mixed_depthwise_conv2d_weight_grad: one kernel size per group");
  const int64_t n = x.size(0), c = x.size(1);
  const int h = static_cast<int>(x.size(2)), w = static_cast<int>(x.size(3));
  std::vector<at::Tensor> grads;
  std::vector<int> kernel;
  std::vector<float*> out;
  int k_max = 1;
  for (size_t t = 0; t < channels.size(); ++t) {
    const int k = static_cast<int>(kernel_sizes[t]);
    TORCH_CHECK(k == 1 || k == 3 || k == 5 || k == 7 || k == 9 || k == 11,
                "mixed_depthwise_conv2d_weight_grad: kernel sizes must be in {1, 3, 5, 7, 9, 11}");
    k_max = std::max(k_max, k);
    grads.push_back(at::empty({channels[t], 1, k, k}, x.options()));
    for (int64_t l = 0; l < channels[t]; ++l) {
      kernel.push_back(k);
      out.push_back(grads.back().data_ptr<float>() + l * k * k);
    }
  }
  TORCH_CHECK(static_cast<int64_t>(kernel.size()) == c,
              "mixed_depthwise_conv2d_weight_grad: the groups cover ", kernel.size(),
              " channels, x has ", c);
  const int tile_w = (w + kLanes - 1) / kLanes * kLanes;
  const int64_t buf_floats =
      int64_t(tile_w + k_max - 1) * (h + k_max - 1) + int64_t(tile_w) * h;
  const int64_t hw = int64_t(h) * w;
  const float* xp = x.data_ptr<float>();
  const float* gp = dy.data_ptr<float>();
  at::parallel_for(0, c, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> buf(buf_floats);
    for (int64_t ch = begin; ch < end; ++ch)
      weight_grad_k(kernel[ch], xp + ch * hw, gp + ch * hw, n, c * hw, h, w, out[ch],
                    buf.data());
  });
  return grads;
}

// Dispatcher ops (torch.ops.leanconv.*), not pybind functions, so that
// dispatch-level tools (leanconv.profile, torch's FlopCounterMode, the profiler) see them.
// The op schemas are defined in Python (leanconv/kernels/mixed_depthwise.py) when leanconv is
// imported, with their shape functions and FLOP formulas; this library adds the CPU kernels.
TORCH_LIBRARY_IMPL(leanconv, CPU, m) {
  m.impl("mixed_depthwise_conv2d", &mixed_depthwise_conv2d);
  m.impl("mixed_depthwise_conv2d_weight_grad", &mixed_depthwise_conv2d_weight_grad);
}
