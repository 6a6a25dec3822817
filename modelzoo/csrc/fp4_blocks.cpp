// Fused CPU kernels for NVFP4 quantise-dequantise and the wgrad Hadamard rotation (modelzoo/fp4_kernels.py
// loads them).
//
// The readable reference is modelzoo/fp4_quant.py: about a dozen whole-tensor passes per quantisation, several
// of them broadcasting a per-block scale over 16-element inner dimensions, which PyTorch's CPU loops do not
// vectorise. Here the same float32 arithmetic, in the same order, runs in two passes: one reads the tensor
// for the block maxima, the other computes the scales of each block and writes the result; padding to whole
// blocks is implicit, so no padded copy is made. The results are bit for bit those of the reference
// (tests/modelzoo/test_fp4_kernels.py), which is why the build turns off floating-point contraction: a fused
// multiply-add would round differently from PyTorch's separate multiply and add.
#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

namespace {

constexpr uint32_t kExponentMask = 0x7F800000u;
constexpr uint32_t kMagnitudeMask = 0x7FFFFFFFu;
constexpr float kFloat32Max = 3.4028234663852886e38f;

// The rounding constant of a format with ``MantissaBits`` at a float32 magnitude: the float whose exponent field is
// the value's binade plus (23 - MantissaBits), with the top mantissa bit set (see modelzoo/fp4_formats.py).
template <uint32_t MantissaBits>
constexpr uint32_t magic_offset() {
  return ((23u - MantissaBits) << 23) | (1u << 22);
}

// Stochastic rounding dithers by (bits - 127.5) / 256 of the grid spacing: spacing / 256 = C / 1.5 * 2**-31.
const float kDitherPerMagic = static_cast<float>(1.0 / 2147483648.0 / 1.5);

inline float bits_to_float(uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

inline uint32_t float_to_bits(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
}

// Comparisons below are written so that NaN passes through, as torch.clamp lets it.
inline float clamp(float value, float low, float high) {
  return value < low ? low : (value > high ? high : value);
}

// fp4_formats.round_e4m3 for one non-negative block scale.
inline float round_e4m3(float scale) {
  const float magnitude = clamp(scale, 0.015625f, 256.0f);
  const float magic = bits_to_float((float_to_bits(magnitude) & kExponentMask) + magic_offset<3>());
  return (clamp(scale, -448.0f, 448.0f) + magic) - magic;
}

// Stochastic rounding's 8 random bits for one element: a counter-based hash of the seed and the element's index
// in the padded blocked layout (fp4_formats.random_bits computes the same with tensor operations).
inline uint32_t noise_byte(uint32_t seed, uint64_t index) {
  uint32_t x = static_cast<uint32_t>(index) * 0x9E3779B1u + seed;
  x ^= x >> 16;
  x *= 0x21F0AAADu;
  x ^= x >> 15;
  x *= 0x735A2D97u;
  x ^= x >> 15;
  return x >> 24;
}

// One element: scale into E2M1's range, round (to nearest even, or dithered by ``noise``), scale back.
template <bool Stochastic>
inline float quantize_one(float x, float encode, float decode, uint32_t noise) {
  float value = x * encode;
  const float magnitude = clamp((x < 0.0f ? -x : x) * encode, 1.0f, 4.0f);
  value = clamp(value, -6.0f, 6.0f);
  const float magic = bits_to_float((float_to_bits(magnitude) & kExponentMask) + magic_offset<1>());
  if (Stochastic) {
    const float centred = static_cast<float>(static_cast<int32_t>(noise)) - 127.5f;
    value = value + kDitherPerMagic * centred * magic;
  }
  value = (value + magic) - magic;
  return value * decode;
}

// A batch of matrices cut into blocks of block_rows x block_cols; blocks past the edges are zero-padded in
// thought only (padding never raises a maximum, and padded outputs are never written).
struct Layout {
  int64_t batch, rows, cols;
  int64_t block_rows, block_cols;
  int64_t row_blocks, col_blocks;  // per matrix
  int64_t padded_rows() const { return row_blocks * block_rows; }
  int64_t padded_cols() const { return col_blocks * block_cols; }
};

Layout layout_of(const torch::Tensor& x, int64_t block_rows, int64_t block_cols) {
  TORCH_CHECK(x.dim() == 3 && x.scalar_type() == torch::kFloat32 && x.is_contiguous() && x.device().is_cpu(),
              "fp4 kernels: expected a contiguous float32 CPU tensor (batch, rows, cols)");
  TORCH_CHECK((block_rows == 1 || block_rows == 16) && (block_cols == 1 || block_cols == 16),
              "fp4 kernels: blocks are 1 or 16 wide in each dimension");
  Layout l{x.size(0), x.size(1), x.size(2), block_rows, block_cols, 0, 0};
  l.row_blocks = (l.rows + block_rows - 1) / block_rows;
  l.col_blocks = (l.cols + block_cols - 1) / block_cols;
  return l;
}

// Block maxima compared as integers: with the sign bit cleared, the bit patterns of floats sort like their
// magnitudes, and every NaN sorts above infinity, so a NaN block maximum propagates as torch.amax's does. Integer
// maxima vectorise without the fast-math licence that float maxima would need.
template <int64_t BlockCols>
void block_amax_rows(const uint32_t* x, uint32_t* amax, const Layout& l, int64_t begin, int64_t end) {
  const int64_t cols = l.cols, col_blocks = l.col_blocks, full_blocks = cols / BlockCols;
  for (int64_t rb = begin; rb < end; ++rb) {  // rb: (matrix, row block)
    const int64_t matrix = rb / l.row_blocks, first_row = (rb % l.row_blocks) * l.block_rows;
    const int64_t last_row = std::min(first_row + l.block_rows, l.rows);
    uint32_t* out = amax + rb * col_blocks;
    for (int64_t c = 0; c < col_blocks; ++c) out[c] = 0u;
    for (int64_t row = first_row; row < last_row; ++row) {
      const uint32_t* src = x + (matrix * l.rows + row) * cols;
      for (int64_t c = 0; c < full_blocks; ++c) {
        uint32_t best = out[c];
        for (int64_t j = 0; j < BlockCols; ++j) {
          const uint32_t magnitude = src[c * BlockCols + j] & kMagnitudeMask;
          best = magnitude > best ? magnitude : best;
        }
        out[c] = best;
      }
      for (int64_t j = full_blocks * BlockCols; j < cols; ++j) {  // a partial last block
        const uint32_t magnitude = src[j] & kMagnitudeMask;
        out[full_blocks] = magnitude > out[full_blocks] ? magnitude : out[full_blocks];
      }
    }
  }
}

template <int64_t BlockCols, bool Stochastic>
void quantize_rows(const float* x, float* out, const float* encode, const float* decode, uint32_t seed,
                   const Layout& l, int64_t rb) {
  const int64_t cols = l.cols, full_blocks = cols / BlockCols;
  const int64_t matrix = rb / l.row_blocks, first_row = (rb % l.row_blocks) * l.block_rows;
  const int64_t last_row = std::min(first_row + l.block_rows, l.rows);
  for (int64_t row = first_row; row < last_row; ++row) {
    const int64_t offset = (matrix * l.rows + row) * cols;
    const float* src = x + offset;
    float* dst = out + offset;
    // Noise is indexed in the padded layout, as the reference draws it.
    const uint64_t noise_offset = static_cast<uint64_t>((matrix * l.padded_rows() + row) * l.padded_cols());
    for (int64_t c = 0; c < full_blocks; ++c)
      for (int64_t j = 0; j < BlockCols; ++j) {
        const int64_t k = c * BlockCols + j;
        const uint32_t noise = Stochastic ? noise_byte(seed, noise_offset + k) : 0u;
        dst[k] = quantize_one<Stochastic>(src[k], encode[c], decode[c], noise);
      }
    for (int64_t k = full_blocks * BlockCols; k < cols; ++k) {
      const uint32_t noise = Stochastic ? noise_byte(seed, noise_offset + k) : 0u;
      dst[k] = quantize_one<Stochastic>(src[k], encode[full_blocks], decode[full_blocks], noise);
    }
  }
}

// Grain: about 64k elements per task, so small tensors stay on one thread.
int64_t grain_for(const Layout& l) {
  const int64_t per_row_block = l.block_rows * l.cols;
  return std::max<int64_t>(1, 65536 / std::max<int64_t>(1, per_row_block));
}

}  // namespace

// The NVFP4 round trip of every matrix of ``x`` (batch, rows, cols): fp4_quant.quantize followed by the decode,
// in two passes over ``x``. ``groups`` (int64, one id per block, (batch, row_blocks, col_blocks)) gives each
// group its own tensor scale; ``noise_seed`` (a 0-d int64 tensor, 32 bits used) selects stochastic rounding.
torch::Tensor round_trip(const torch::Tensor& x, int64_t block_rows, int64_t block_cols,
                         const c10::optional<torch::Tensor>& groups, int64_t num_groups,
                         const c10::optional<torch::Tensor>& noise_seed) {
  const Layout l = layout_of(x, block_rows, block_cols);
  const int64_t row_block_count = l.batch * l.row_blocks, blocks = row_block_count * l.col_blocks;
  if (groups.has_value()) {
    TORCH_CHECK(groups->scalar_type() == torch::kInt64 && groups->is_contiguous() && groups->numel() == blocks,
                "fp4 kernels: groups must be contiguous int64 with one id per block");
  }
  auto result = torch::empty_like(x);
  if (blocks == 0) return result;
  std::vector<uint32_t> block_amax(blocks);
  const auto* bits_in = reinterpret_cast<const uint32_t*>(x.data_ptr<float>());
  at::parallel_for(0, row_block_count, grain_for(l), [&](int64_t begin, int64_t end) {
    if (l.block_cols == 16) block_amax_rows<16>(bits_in, block_amax.data(), l, begin, end);
    else block_amax_rows<1>(bits_in, block_amax.data(), l, begin, end);
  });

  // The tensor (or group) maxima, as integers again, then the per-tensor encode scales s_enc = 6 * 448 / amax.
  const int64_t group_count = groups.has_value() ? num_groups : 1;
  const int64_t* group_of = groups.has_value() ? groups->data_ptr<int64_t>() : nullptr;
  std::vector<uint32_t> group_amax(group_count, 0u);
  if (group_of == nullptr) {
    uint32_t best = 0u;
    for (int64_t b = 0; b < blocks; ++b) best = std::max(best, block_amax[b]);
    group_amax[0] = best;
  } else {
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t g = group_of[b];
      TORCH_CHECK(g >= 0 && g < group_count, "fp4 kernels: group id ", g, " out of range");
      group_amax[g] = std::max(group_amax[g], block_amax[b]);
    }
  }
  std::vector<float> tensor_scale(group_count);
  for (int64_t g = 0; g < group_count; ++g) {
    // PyTorch evaluates ``2688 / amax`` as reciprocal times 2688; the clamp keeps an all-zero tensor finite.
    const float scale = (1.0f / bits_to_float(group_amax[g])) * 2688.0f;
    tensor_scale[g] = scale > kFloat32Max ? kFloat32Max : scale;
  }

  const float* in = x.data_ptr<float>();
  float* out = result.data_ptr<float>();
  const bool stochastic = noise_seed.has_value();
  const uint32_t seed = stochastic ? static_cast<uint32_t>(noise_seed->item<int64_t>()) : 0u;
  at::parallel_for(0, row_block_count, grain_for(l), [&](int64_t begin, int64_t end) {
    std::vector<float> encode(l.col_blocks), decode(l.col_blocks), s_enc(l.col_blocks);
    for (int64_t rb = begin; rb < end; ++rb) {
      const int64_t first = rb * l.col_blocks;
      for (int64_t c = 0; c < l.col_blocks; ++c)
        s_enc[c] = tensor_scale[group_of == nullptr ? 0 : group_of[first + c]];
      // Kept free of indirection and branches, so that it runs as vector code: one scale per 16 elements is
      // otherwise as costly as the element pass itself.
      for (int64_t c = 0; c < l.col_blocks; ++c) {
        const float scale = round_e4m3(bits_to_float(block_amax[first + c]) * (s_enc[c] / 6.0f));
        const float factor = s_enc[c] / scale;
        // nan_to_num(posinf=0): blocks whose scale rounds to 0 flush to 0.
        encode[c] = (factor != factor || factor > kFloat32Max) ? 0.0f : (factor < -kFloat32Max ? -kFloat32Max : factor);
        decode[c] = scale / s_enc[c];
      }
      if (l.block_cols == 16) {
        if (stochastic) quantize_rows<16, true>(in, out, encode.data(), decode.data(), seed, l, rb);
        else quantize_rows<16, false>(in, out, encode.data(), decode.data(), seed, l, rb);
      } else {
        if (stochastic) quantize_rows<1, true>(in, out, encode.data(), decode.data(), seed, l, rb);
        else quantize_rows<1, false>(in, out, encode.data(), decode.data(), seed, l, rb);
      }
    }
  });
  return result;
}

// One 16-row slice, Width columns at a time (a compile-time width, so the column loops become vector code):
// signs, four butterfly stages, the 1/4 normalisation.
template <int64_t Width>
inline void hadamard_columns(const float* __restrict__ src, float* __restrict__ dst, int64_t cols,
                             const float* __restrict__ sign) {
  constexpr int64_t kSize = 16;
  float v[kSize][Width];
  for (int64_t m = 0; m < kSize; ++m) {
    const float s = sign[m];
#pragma omp simd
    for (int64_t j = 0; j < Width; ++j) v[m][j] = s * src[m * cols + j];
  }
  // Fully unrolled, so the 16 rows of the chunk stay in vector registers through the four stages.
#pragma GCC unroll 4
  for (int64_t half = 1; half < kSize; half *= 2)
#pragma GCC unroll 8
    for (int64_t first = 0; first < kSize; first += 2 * half)
#pragma GCC unroll 8
      for (int64_t m = first; m < first + half; ++m)
#pragma omp simd
        for (int64_t j = 0; j < Width; ++j) {
          const float a = v[m][j], b = v[m + half][j];
          v[m][j] = a + b;
          v[m + half][j] = a - b;
        }
  for (int64_t m = 0; m < kSize; ++m)
#pragma omp simd
    for (int64_t j = 0; j < Width; ++j) dst[m * cols + j] = v[m][j] * 0.25f;
}

// The 16x16 random Hadamard transform of every 16-row slice: y = H diag(signs) x / 4, with H the Sylvester
// Hadamard matrix applied as a fast Walsh-Hadamard transform (4 butterfly stages, 4 additions per element instead
// of a 16-term dot product), vectorised across columns.
torch::Tensor rotate_rows(const torch::Tensor& x, const torch::Tensor& signs) {
  TORCH_CHECK(x.dim() == 2 && x.scalar_type() == torch::kFloat32 && x.is_contiguous() && x.device().is_cpu(),
              "fp4 kernels: rotate_rows takes a contiguous 2-D float32 CPU tensor");
  TORCH_CHECK(x.size(0) % 16 == 0, "fp4 kernels: rotate_rows needs a multiple of 16 rows, got ", x.size(0));
  TORCH_CHECK(signs.scalar_type() == torch::kFloat32 && signs.is_contiguous() && signs.numel() == 16,
              "fp4 kernels: rotate_rows takes 16 float32 signs");
  constexpr int64_t kSize = 16;
  constexpr int64_t kWidth = 16;
  const int64_t cols = x.size(1);
  auto result = torch::empty_like(x);
  const float* in = x.data_ptr<float>();
  float* out = result.data_ptr<float>();
  float sign[kSize];
  std::memcpy(sign, signs.data_ptr<float>(), sizeof sign);
  const int64_t grain = std::max<int64_t>(1, 65536 / std::max<int64_t>(1, kSize * cols));
  at::parallel_for(0, x.size(0) / kSize, grain, [&](int64_t begin, int64_t end) {
    for (int64_t slice = begin; slice < end; ++slice) {
      const float* src = in + slice * kSize * cols;
      float* dst = out + slice * kSize * cols;
      int64_t start = 0;
      for (; start + kWidth <= cols; start += kWidth) hadamard_columns<kWidth>(src + start, dst + start, cols, sign);
      for (; start < cols; ++start) hadamard_columns<1>(src + start, dst + start, cols, sign);
    }
  });
  return result;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("round_trip", &round_trip, "NVFP4 quantise-dequantise of a batch of float32 matrices");
  m.def("rotate_rows", &rotate_rows, "random Hadamard transform of every 16-row slice");
}
