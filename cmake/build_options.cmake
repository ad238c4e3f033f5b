# Build options: warnings (and warnings as errors), sanitizers, fuzzing, and
# the product-only build. Included by the top-level CMakeLists.txt before any
# part, so every target of the tree gets the same flags.
#
#   -DVB_WERROR=ON                     warnings are errors (tools/bootstrap.sh, so CI)
#   -DVB_SANITIZE=address,undefined    ASan + UBSan (build-asan); "thread" = TSan
#   -DVB_FUZZ=ON                       libFuzzer targets in tests/fuzz (clang only;
#                                      implies ASan + UBSan on every target)
#   -DVB_BUILD_TESTS=OFF               product only: no tests, no benches, and
#                                      neither GTest nor Google Benchmark needed
option(VB_WERROR "treat compiler warnings as errors" OFF)
option(VB_BUILD_TESTS "build tests and benchmarks (needs GTest and Google Benchmark)" ON)
option(VB_FUZZ "build the libFuzzer targets of tests/fuzz (needs clang)" OFF)
set(VB_SANITIZE "" CACHE STRING "sanitizers for every target: address,undefined | thread | empty")

# Designated initializers ({.origin_ns = t}) leave the other fields to their
# defaults on purpose: no warning for that.
add_compile_options(-Wall -Wextra -Wshadow -Wno-unused-parameter -Wno-missing-field-initializers)
if(VB_WERROR)
  # -Wshadow included: GCC 12 finds no shadowing in any of the tree's 199
  # translation units (products, tests, benches; 2026-12-06).
  add_compile_options(-Werror)
endif()

# RelWithDebInfo (the default) with line tables and function names only
# (-g1): enough for crash stacks, perf and sanitizer reports, not for a
# debugger's variables; the heaviest translation units compile ~40 % faster
# than with -g (bench/e2e/e2e_bench.cc 33 -> 20 s, GCC 12, 2026-12-07), and
# the cold build is most of CI's time. -DVB_FULL_DEBUG_INFO=ON for -g.
option(VB_FULL_DEBUG_INFO "RelWithDebInfo with full debug info (-g) instead of line tables (-g1)" OFF)
if(NOT VB_FULL_DEBUG_INFO)
  add_compile_options($<$<CONFIG:RelWithDebInfo>:-g1>)
endif()

# Unity build: each target's sources compiled in batches of up to 8 as one
# translation unit, so the heavy headers (nlohmann/json, protobuf, gtest,
# libwebsockets) are parsed and their templates instantiated once per batch
# instead of once per file. A clean build costs about half the CPU (five of
# the simulator's files under ASan+UBSan: 149 s one by one, 73 s as one;
# 2026-12-07), and a cold build is most of CI's time. Off by default for a
# developer's own tree (an edit recompiles its whole batch);
# tools/bootstrap.sh turns it on for a new build/ and the check trees follow.
option(VB_UNITY_BUILD "compile each target's sources in batches (CMake unity build)" OFF)
set(CMAKE_UNITY_BUILD ${VB_UNITY_BUILD})

# lld links the trees' ~130 executables about four times faster than GNU ld
# (an ASan test 1.5 -> 0.33 s, a release actor 0.47 -> 0.16 s): a minute of
# CI's cold build. Used when installed (tools/bootstrap.sh installs it).
option(VB_LLD "link with lld when it is installed" ON)
find_program(VB_LD_LLD NAMES ld.lld)
if(VB_LLD AND VB_LD_LLD)
  add_link_options(-fuse-ld=lld)
endif()

if(VB_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "VB_FUZZ needs clang (libFuzzer): configure with "
                        "-DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++")
  endif()
  if(NOT VB_SANITIZE)
    set(VB_SANITIZE address,undefined)
  endif()
  # Every library a fuzz target links is instrumented for coverage; the
  # fuzz executables add -fsanitize=fuzzer (libFuzzer's main) themselves.
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()

if(VB_SANITIZE)
  if(VB_SANITIZE MATCHES "thread" AND VB_SANITIZE MATCHES "address")
    message(FATAL_ERROR "VB_SANITIZE: thread and address cannot be combined")
  endif()
  # Any undefined behaviour stops the process (so a test fails), instead of a
  # line in a log nobody reads. Frame pointers keep the reports' stacks whole.
  set(vb_san -fsanitize=${VB_SANITIZE} -fno-omit-frame-pointer)
  if(VB_SANITIZE MATCHES "undefined")
    list(APPEND vb_san -fno-sanitize-recover=undefined)
  endif()
  add_compile_options(${vb_san})
  add_link_options(${vb_san})
  # The build type's own flags stay (RelWithDebInfo for a developer); CI's
  # sanitizer tree asks for -O1 -g0 through CMAKE_CXX_FLAGS_RELWITHDEBINFO.
endif()
