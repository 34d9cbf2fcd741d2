#pragma once
/// \file torch_doctest.hpp
/// LibTorch pulls in glog-style CHECK macros (c10/util/logging_is_google_glog.h)
/// that abort instead of recording a doctest failure. Generator tests include
/// this header instead of <doctest/doctest.h>: LibTorch first, its CHECK family
/// removed, then doctest's definitions.
#include <torch/torch.h>

#undef CHECK
#undef CHECK_EQ
#undef CHECK_NE
#undef CHECK_LE
#undef CHECK_LT
#undef CHECK_GE
#undef CHECK_GT
#undef CHECK_NOTNULL
#undef CHECK_FALSE
#undef CHECK_THROWS
#undef CHECK_NOTHROW

#include <doctest/doctest.h>
