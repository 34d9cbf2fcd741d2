#pragma once
/// \file torch_doctest.hpp
/// Include this instead of <doctest/doctest.h> in tests that use LibTorch.
/// LibTorch's c10/util/logging_is_not_google_glog.h defines a glog-style CHECK(cond)
/// macro; included after doctest it silently replaces doctest's CHECK, so the checks
/// are neither counted nor reported. Including torch first, dropping its CHECK and then
/// including doctest gives every test file doctest's CHECK.
#include <torch/torch.h>
#undef CHECK
#include <doctest/doctest.h>
