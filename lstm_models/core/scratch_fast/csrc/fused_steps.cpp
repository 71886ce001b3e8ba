// scratch_fast's time loops in C++: per step, the recurrent product on PyTorch's BLAS and all of the step's
// element-wise work in one pass over the (B, H) elements (design note, docs/scratch_fast.md, "Fused steps").
//
// Layout, nn.LSTM's: a step's gates are a (B, 4H) row block in the order i, f, g, o.
// Forward:  z = x_proj_t + b + h_{t-1} W_hh^T;  i, f, o = σ(z);  g = tanh z_g;  c_t = f c_{t-1} + i g;
//           h_t = o tanh c_t.
// Backward, with dh the gradient reaching h_t through h_{t+1} (and h_n's own) plus the output's gradient at t,
// and dc the gradient reaching c_t from c_{t+1} (and c_n's own):
//   dc += dh o (1 - tanh²c_t);  dz_i = dc g i(1-i);  dz_f = dc c_{t-1} f(1-f);  dz_g = dc i (1-g²);
//   dz_o = dh tanh(c_t) o(1-o);  dc_{t-1} = dc f;  dh_{t-1} = dz W_hh.
#include <ATen/ATen.h>
#include <ATen/Config.h>
#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <torch/library.h>

#include <cmath>
#include <memory>

#if AT_MKL_ENABLED()
// MKL's packed GEMM, which PyTorch's own library exports: W_hh is packed once per call into the layout the matrix
// kernels read, instead of once per step by each plain GEMM call. Single precision only (MKL's double version is not
// exported); float64, there for exactness checks, uses at::addmm.
extern "C" {
size_t cblas_sgemm_pack_get_size(int identifier, int m, int n, int k);
void cblas_sgemm_pack(int layout, int identifier, int trans, int m, int n, int k, float alpha, const float* src,
                      int ld, float* dest);
void cblas_sgemm_compute(int layout, int transa, int transb, int m, int n, int k, const float* a, int lda,
                         const float* b, int ldb, float beta, float* c, int ldc);
}
#endif

namespace {

#if AT_MKL_ENABLED()
constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112, kPacked = 151, kBMatrix = 162;
#endif

// Elements per thread: a step's element-wise pass takes microseconds, so it is split between threads only where
// each gets enough elements to pay for the hand-over.
constexpr int64_t kMinElementsPerTask = 32768;

template <typename T>
inline T sigmoid(T z) { return T(1) / (T(1) + std::exp(-z)); }

// tanh z = 2σ(2z) - 1: vectorised, an exp and a division cost less than glibc's vector tanh, and the forward's
// element-wise pass is the largest part of its time outside the products.
template <typename T>
inline T tanh_by_sigmoid(T z) { return T(2) * sigmoid(T(2) * z) - T(1); }

// One step's product, out (B, N) = beta * out + a (B, K) · W, where W is ``weight`` (rows N, K) transposed when
// ``transposed``, or ``weight`` (K, N) as it is. The weight is packed once, at construction, where MKL can. Steps are
// addressed by pointer, not by indexing tensors: a tensor index is a dispatched operator call, a dozen per step.
template <typename T>
class StepProduct {
 public:
  StepProduct(const at::Tensor& weight, bool transposed, int64_t batch)
      : weight_(transposed ? weight.t() : weight), batch_(batch), n_(weight_.size(1)), k_(weight_.size(0)) {
#if AT_MKL_ENABLED()
    if constexpr (std::is_same_v<T, float>) {
      packed_.reset(new float[cblas_sgemm_pack_get_size(kBMatrix, batch, n_, k_) / sizeof(float) + 1]);
      cblas_sgemm_pack(kRowMajor, kBMatrix, transposed ? kTrans : kNoTrans, batch, n_, k_, 1.0f,
                       weight.data_ptr<float>(), weight.size(1), packed_.get());
    }
#endif
  }

  void operator()(const T* a, T* out, bool accumulate) const {
    // Named for the profiler (benchmarks/profile_step.py), which otherwise counts it in the loop's own time.
    RECORD_FUNCTION("lstm_bench_fused::step_product", std::vector<c10::IValue>());
#if AT_MKL_ENABLED()
    if constexpr (std::is_same_v<T, float>) {
      cblas_sgemm_compute(kRowMajor, kNoTrans, kPacked, batch_, n_, k_, a, k_, packed_.get(), n_,
                          accumulate ? 1.0f : 0.0f, out, n_);
      return;
    }
#endif
    const auto options = weight_.options();
    const at::Tensor a_tensor = at::from_blob(const_cast<T*>(a), {batch_, k_}, options);
    at::Tensor out_tensor = at::from_blob(out, {batch_, n_}, options);
    if (accumulate) {
      out_tensor.addmm_(a_tensor, weight_);
    } else {
      at::mm_out(out_tensor, a_tensor, weight_);
    }
  }

 private:
  at::Tensor weight_;
  int64_t batch_, n_, k_;
  std::unique_ptr<float[]> packed_;
};

template <typename T>
void cell_forward(T* gates, const T* bias, const T* cell_before, T* cell, T* tanh_cell, T* hidden, int64_t batch,
                  int64_t width) {
  const int64_t grain = std::max<int64_t>(1, kMinElementsPerTask / width);
  at::parallel_for(0, batch, grain, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      T* z = gates + b * 4 * width;
      const T* c_before = cell_before + b * width;
      T* c = cell + b * width;
      T* h = hidden + b * width;
      T* tc_out = tanh_cell ? tanh_cell + b * width : nullptr;
#pragma omp simd
      for (int64_t j = 0; j < width; ++j) {
        const T i = sigmoid(z[j] + bias[j]);
        const T f = sigmoid(z[width + j] + bias[width + j]);
        const T g = tanh_by_sigmoid(z[2 * width + j] + bias[2 * width + j]);
        const T o = sigmoid(z[3 * width + j] + bias[3 * width + j]);
        const T c_new = f * c_before[j] + i * g;
        const T tc = tanh_by_sigmoid(c_new);
        z[j] = i;
        z[width + j] = f;
        z[2 * width + j] = g;
        z[3 * width + j] = o;
        c[j] = c_new;
        h[j] = o * tc;
        if (tc_out) tc_out[j] = tc;
      }
    }
  });
}

template <typename T>
void cell_backward(const T* gates, const T* cell_before, const T* tanh_cell, const T* output_grad, const T* dh,
                   T* dc, T* grad_gates, int64_t batch, int64_t width) {
  const int64_t grain = std::max<int64_t>(1, kMinElementsPerTask / width);
  at::parallel_for(0, batch, grain, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      const T* a = gates + b * 4 * width;
      T* dz = grad_gates + b * 4 * width;
      const T* c_before = cell_before + b * width;
      const T* tc = tanh_cell + b * width;
      const T* dh_row = dh + b * width;
      const T* go_row = output_grad ? output_grad + b * width : nullptr;
      T* dc_row = dc + b * width;
#pragma omp simd
      for (int64_t j = 0; j < width; ++j) {
        const T i = a[j], f = a[width + j], g = a[2 * width + j], o = a[3 * width + j];
        const T dh_t = go_row ? dh_row[j] + go_row[j] : dh_row[j];
        const T dc_t = dc_row[j] + dh_t * o * (T(1) - tc[j] * tc[j]);
        dz[j] = dc_t * g * i * (T(1) - i);
        dz[width + j] = dc_t * c_before[j] * f * (T(1) - f);
        dz[2 * width + j] = dc_t * i * (T(1) - g * g);
        dz[3 * width + j] = dh_t * tc[j] * o * (T(1) - o);
        dc_row[j] = dc_t * f;
      }
    }
  });
}

void check_buffer(const char* op, const at::Tensor& tensor) {
  TORCH_CHECK(tensor.device().is_cpu() && tensor.is_contiguous(), op, ": buffers must be contiguous CPU tensors");
}

template <typename... Tensors>
void check_cpu(const char* op, const Tensors&... tensors) {
  (check_buffer(op, tensors), ...);
}

// gates (T, B, 4H): x W_ih^T on entry (the biases, (4H,), are added here), the activated i, f, g, o on return.
// hiddens, cells (T + 1, B, H): h_0, c_0 on entry, every step's on return. tanh_cells (T, B, H), or none without
// a backward.
void forward_steps(at::Tensor gates, const at::Tensor& bias, const at::Tensor& weight_hh, at::Tensor hiddens,
                   at::Tensor cells, const std::optional<at::Tensor>& tanh_cells) {
  check_cpu("forward_steps", gates, bias, weight_hh, hiddens, cells);
  const int64_t seq_len = gates.size(0), batch = gates.size(1), width = hiddens.size(2);
  const bool keep_tanh = tanh_cells.has_value() && tanh_cells->defined();
  if (keep_tanh) check_cpu("forward_steps", *tanh_cells);
  AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "forward_steps", [&] {
    const StepProduct<scalar_t> recurrent(weight_hh, /*transposed=*/true, batch);  // h W_hh^T
    const int64_t gate_step = batch * 4 * width, state_step = batch * width;
    scalar_t* z = gates.data_ptr<scalar_t>();
    scalar_t* h = hiddens.data_ptr<scalar_t>();
    scalar_t* c = cells.data_ptr<scalar_t>();
    scalar_t* tc = keep_tanh ? tanh_cells->data_ptr<scalar_t>() : nullptr;
    for (int64_t t = 0; t < seq_len; ++t) {
      scalar_t* z_t = z + t * gate_step;
      recurrent(h + t * state_step, z_t, /*accumulate=*/true);
      cell_forward<scalar_t>(z_t, bias.data_ptr<scalar_t>(), c + t * state_step, c + (t + 1) * state_step,
                             tc ? tc + t * state_step : nullptr, h + (t + 1) * state_step, batch, width);
    }
  });
}

// dh, dc (B, H): the gradients reaching h_T and c_T from h_n and c_n on entry, dh_0 and dc_0 on return.
// grad_output (T, B, H), or none. grad_gates (T, B, 4H): every step's dz on return.
void backward_steps(const at::Tensor& gates, const at::Tensor& cells, const at::Tensor& tanh_cells,
                    const at::Tensor& weight_hh, const std::optional<at::Tensor>& grad_output, at::Tensor dh,
                    at::Tensor dc, at::Tensor grad_gates) {
  check_cpu("backward_steps", gates, cells, tanh_cells, weight_hh, dh, dc, grad_gates);
  const int64_t seq_len = gates.size(0), batch = gates.size(1), width = dh.size(1);
  const bool has_grad_output = grad_output.has_value() && grad_output->defined();
  if (has_grad_output) check_cpu("backward_steps", *grad_output);
  at::Tensor dh_step = dh.clone();  // the loop's own: the caller's dh receives dh_0 at the end
  AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "backward_steps", [&] {
    const StepProduct<scalar_t> recurrent(weight_hh, /*transposed=*/false, batch);  // dz W_hh
    const int64_t gate_step = batch * 4 * width, state_step = batch * width;
    const scalar_t* a = gates.data_ptr<scalar_t>();
    const scalar_t* c = cells.data_ptr<scalar_t>();
    const scalar_t* tc = tanh_cells.data_ptr<scalar_t>();
    const scalar_t* go = has_grad_output ? grad_output->data_ptr<scalar_t>() : nullptr;
    scalar_t* dz = grad_gates.data_ptr<scalar_t>();
    scalar_t* dh_loop = dh_step.data_ptr<scalar_t>();
    for (int64_t t = seq_len - 1; t >= 0; --t) {
      scalar_t* dz_t = dz + t * gate_step;
      cell_backward<scalar_t>(a + t * gate_step, c + t * state_step, tc + t * state_step,
                              go ? go + t * state_step : nullptr, dh_loop, dc.data_ptr<scalar_t>(), dz_t, batch,
                              width);
      recurrent(dz_t, t > 0 ? dh_loop : dh.data_ptr<scalar_t>(), /*accumulate=*/false);
    }
  });
}

}  // namespace

TORCH_LIBRARY(lstm_bench_fused, m) {
  m.def("forward_steps(Tensor(a!) gates, Tensor bias, Tensor weight_hh, Tensor(b!) hiddens, Tensor(c!) cells, "
        "Tensor(d!)? tanh_cells) -> ()");
  m.def("backward_steps(Tensor gates, Tensor cells, Tensor tanh_cells, Tensor weight_hh, Tensor? grad_output, "
        "Tensor(a!) dh, Tensor(b!) dc, Tensor(c!) grad_gates) -> ()");
}

TORCH_LIBRARY_IMPL(lstm_bench_fused, CPU, m) {
  m.impl("forward_steps", forward_steps);
  m.impl("backward_steps", backward_steps);
}
