// Fused CPU kernels for NVFP4 quantise-dequantise (modelzoo/fp4_kernels.py loads them).
//
// The readable reference is modelzoo/fp4_quant.py: about a dozen whole-tensor passes per quantisation, several
// of them broadcasting a per-block scale over 16-element inner dimensions, which PyTorch's CPU loops do not
// vectorise. Here the same float32 arithmetic, in the same order, runs in two passes: one reads the tensor
// for the block maxima, the other writes the result. The results are bit for bit those of the reference
// (tests/modelzoo/test_fp4_kernels.py), which is why the build turns off floating-point contraction: a fused
// multiply-add would round differently from PyTorch's separate multiply and add.
#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <cstdint>
#include <cstring>

namespace {

constexpr uint32_t kExponentMask = 0x7F800000u;
// E2M1's rounding constant C = 1.5 * spacing * 2**23 is the float whose exponent field is the value's binade
// plus (23 - 1 mantissa bits), with the top mantissa bit set (see modelzoo/fp4_formats.py).
constexpr uint32_t kE2M1MagicOffset = ((23u - 1u) << 23) | (1u << 22);
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

// One element: scale into E2M1's range, round (to nearest even, or dithered), scale back. Comparisons are
// written so that NaN passes through, as torch.clamp lets it.
inline float quantize_one(float x, float encode, float decode, const uint8_t* noise) {
  float value = x * encode;
  float magnitude = (x < 0.0f ? -x : x) * encode;
  value = value < -6.0f ? -6.0f : (value > 6.0f ? 6.0f : value);
  magnitude = magnitude < 1.0f ? 1.0f : (magnitude > 4.0f ? 4.0f : magnitude);
  const float magic = bits_to_float((float_to_bits(magnitude) & kExponentMask) + kE2M1MagicOffset);
  if (noise != nullptr) {
    const float centred = static_cast<float>(*noise) - 127.5f;
    value = value + kDitherPerMagic * centred * magic;
  }
  value = (value + magic) - magic;
  return value * decode;
}

struct Layout {
  int64_t row_blocks;  // batch * rows / block_rows
  int64_t block_rows;
  int64_t col_blocks;
  int64_t block_cols;
};

Layout layout_of(const torch::Tensor& blocked) {
  TORCH_CHECK(blocked.dim() == 5, "fp4 kernels: expected a blocked 5-D tensor, got ", blocked.dim(), " dims");
  TORCH_CHECK(blocked.scalar_type() == torch::kFloat32 && blocked.is_contiguous() && blocked.device().is_cpu(),
              "fp4 kernels: expected a contiguous float32 CPU tensor");
  return {blocked.size(0) * blocked.size(1), blocked.size(2), blocked.size(3), blocked.size(4)};
}

// Block maxima compared as integers: with the sign bit cleared, the bit patterns of floats sort like their
// magnitudes, and every NaN sorts above infinity, so a NaN block maximum propagates as torch.amax's does. Integer
// maxima vectorise without the fast-math licence that float maxima would need.
template <int64_t BlockCols>
void block_amax_rows(const uint32_t* x, uint32_t* amax, const Layout& l, int64_t begin, int64_t end) {
  const int64_t cols = l.col_blocks * BlockCols;
  const int64_t col_blocks = l.col_blocks, block_rows = l.block_rows;
  for (int64_t rb = begin; rb < end; ++rb) {
    uint32_t* out = amax + rb * col_blocks;
    for (int64_t c = 0; c < col_blocks; ++c) out[c] = 0u;
    for (int64_t i = 0; i < block_rows; ++i) {
      const uint32_t* row = x + (rb * block_rows + i) * cols;
      for (int64_t c = 0; c < col_blocks; ++c) {
        uint32_t best = out[c];
        for (int64_t j = 0; j < BlockCols; ++j) {
          const uint32_t magnitude = row[c * BlockCols + j] & 0x7FFFFFFFu;
          best = magnitude > best ? magnitude : best;
        }
        out[c] = best;
      }
    }
  }
}

template <int64_t BlockCols>
void quantize_rows(const float* x, float* out, const float* encode, const float* decode, const uint8_t* noise,
                   const Layout& l, int64_t begin, int64_t end) {
  const int64_t cols = l.col_blocks * BlockCols;
  for (int64_t rb = begin; rb < end; ++rb) {
    const float* enc = encode + rb * l.col_blocks;
    const float* dec = decode + rb * l.col_blocks;
    for (int64_t i = 0; i < l.block_rows; ++i) {
      const int64_t base = (rb * l.block_rows + i) * cols;
      const float* row = x + base;
      float* dst = out + base;
      if (noise == nullptr) {
        for (int64_t c = 0; c < l.col_blocks; ++c)
          for (int64_t j = 0; j < BlockCols; ++j)
            dst[c * BlockCols + j] = quantize_one(row[c * BlockCols + j], enc[c], dec[c], nullptr);
      } else {
        const uint8_t* bits = noise + base;
        for (int64_t c = 0; c < l.col_blocks; ++c)
          for (int64_t j = 0; j < BlockCols; ++j)
            dst[c * BlockCols + j] = quantize_one(row[c * BlockCols + j], enc[c], dec[c], bits + c * BlockCols + j);
      }
    }
  }
}

// Grain: about 64k elements per task, so small tensors stay on one thread.
int64_t grain_for(const Layout& l) {
  const int64_t per_row_block = l.block_rows * l.col_blocks * l.block_cols;
  return std::max<int64_t>(1, 65536 / std::max<int64_t>(1, per_row_block));
}

}  // namespace

// The largest magnitude of every block: shape (batch, row_blocks, 1, col_blocks, 1).
torch::Tensor block_amax(const torch::Tensor& blocked) {
  const Layout l = layout_of(blocked);
  TORCH_CHECK(l.block_cols == 1 || l.block_cols == 16, "fp4 kernels: blocks are 1 or 16 columns wide");
  auto amax = torch::empty({blocked.size(0), blocked.size(1), 1, l.col_blocks, 1},
                           blocked.options().dtype(torch::kInt32));
  const auto* x = reinterpret_cast<const uint32_t*>(blocked.data_ptr<float>());
  auto* out = reinterpret_cast<uint32_t*>(amax.data_ptr<int32_t>());
  at::parallel_for(0, l.row_blocks, grain_for(l), [&](int64_t begin, int64_t end) {
    if (l.block_cols == 16) block_amax_rows<16>(x, out, l, begin, end);
    else block_amax_rows<1>(x, out, l, begin, end);
  });
  return amax.view(torch::kFloat32);
}

// Every element scaled by its block's encode factor, rounded onto E2M1 and multiplied by its block's decode
// factor; ``noise`` (uint8, the blocked shape) selects stochastic rounding.
torch::Tensor quantize_dequantize(const torch::Tensor& blocked, const torch::Tensor& encode,
                                  const torch::Tensor& decode, const c10::optional<torch::Tensor>& noise) {
  const Layout l = layout_of(blocked);
  TORCH_CHECK(l.block_cols == 1 || l.block_cols == 16, "fp4 kernels: blocks are 1 or 16 columns wide");
  for (const auto* factor : {&encode, &decode}) {
    TORCH_CHECK(factor->scalar_type() == torch::kFloat32 && factor->is_contiguous() &&
                    factor->numel() == l.row_blocks * l.col_blocks,
                "fp4 kernels: encode/decode must be contiguous float32 with one value per block");
  }
  if (noise.has_value()) {
    TORCH_CHECK(noise->scalar_type() == torch::kUInt8 && noise->is_contiguous() &&
                    noise->numel() == blocked.numel(),
                "fp4 kernels: noise must be contiguous uint8 with one value per element");
  }
  auto result = torch::empty_like(blocked);
  const float* x = blocked.data_ptr<float>();
  float* out = result.data_ptr<float>();
  const float* enc = encode.data_ptr<float>();
  const float* dec = decode.data_ptr<float>();
  const uint8_t* bits = noise.has_value() ? noise->data_ptr<uint8_t>() : nullptr;
  at::parallel_for(0, l.row_blocks, grain_for(l), [&](int64_t begin, int64_t end) {
    if (l.block_cols == 16) quantize_rows<16>(x, out, enc, dec, bits, l, begin, end);
    else quantize_rows<1>(x, out, enc, dec, bits, l, begin, end);
  });
  return result;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("block_amax", &block_amax, "NVFP4 block maxima of a blocked float32 tensor");
  m.def("quantize_dequantize", &quantize_dequantize, "NVFP4 round trip of a blocked float32 tensor");
}
