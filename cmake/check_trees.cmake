# The checks CI runs beside the ordinary tests, as ctest entries of the main
# tree (so `ctest --test-dir build` — the README's command — runs them):
#
#   sanitize_asan_ubsan   the tests VB_SANITIZE_SUITE names (below), rebuilt
#                         with ASan+UBSan (clang, -O1) in build/asan; fails on
#                         a failed test or on any sanitizer report, including
#                         one from a child process (an actor). The integration
#                         tests it runs run there only, left out of build/'s
#                         ctest (VB_PLAIN_INTEGRATION); the e2e tests run the
#                         release binaries
#   fuzz_<name>           a short libFuzzer run of each target of tests/fuzz,
#                         built in the same build/asan tree (clang's
#                         -fsanitize=fuzzer-no-link on top of ASan+UBSan: one
#                         tree instead of two, the libraries compiled once)
#   sanitize_tsan         the session, gateway and simulator tests (unit and
#                         integration, VB_TSAN_SUITE) under ThreadSanitizer in
#                         build/tsan; skipped unless that tree was built
#                         (`cmake --build build --target vb_check_tsan`;
#                         tools/bootstrap.sh does when VB_CHECK_TSAN=1): it
#                         does not fit in CI's time (README, "Command 2")
#   build_product_only    the product-only configuration (-DVB_BUILD_TESTS=OFF)
#                         configures with GTest and Google Benchmark made
#                         unfindable, and its build graph has every product
#                         binary of this tree and links neither library
#
# The trees are built by `cmake --build build --target vb_check_trees`
# (tools/bootstrap.sh does, after the main build). Enabled by
# -DVB_CHECK_TREES=ON (bootstrap), so a developer's own build dirs do not get
# entries for trees they never built.
option(VB_CHECK_TREES "ctest entries for the sanitizer trees, fuzz runs and the product-only check" OFF)
# CI's ASan+UBSan suite: every unit and integration test (VB_SANITIZE_SUITE),
# run there only, not also in build/ (CTestCustom.cmake below), except the
# ones below, which stay in build/'s release run, each for its reason.
# Measured in a clang ASan+UBSan+coverage tree beside a load of 3-16 on 2
# cores (2026-12-06). To move one over: delete its line, then
# `cmake --build build --target vb_check_trees` and
# `ctest --test-dir build -R sanitize_asan_ubsan` must pass.
set(vb_release_only
  # compiler checks (a type error wanted, in GCC's words): nothing runs
  unit_bus_topic_payload_type_compiles
  unit_bus_wrong_payload_type_does_not_compile
  # its RSS bound (8-64 MB growth under a hostile publisher) would measure
  # ASan's quarantine, not the actors (78-161 MB under ASan), and its attack
  # takes 237 s instead of ~5 s: more than CI's time allows
  integration_hostile
  # DSP loops too slow under ASan for CI's time: unit_afe's echo-canceller
  # simulations take 40-90 s per test (timed out at 360 s); unit_tune passes
  # in 292 s (3.6 s release)
  unit_afe unit_tune
  # real-time bounds (0 xruns in a 10 s loop through PulseAudio, a 40 ms
  # flush): not yet measured under ASan beside two busy loops
  integration_audio_pulse
)
list(JOIN vb_release_only "|" vb_release_only_regex)
set(vb_sanitize_exclude "^(${vb_release_only_regex})$")
set(vb_sanitize_suite_default "^(unit|integration)_")
set(VB_SANITIZE_SUITE "${vb_sanitize_suite_default}"
    CACHE STRING "ctest regex of the tests the ASan+UBSan tree runs (less the release-only ones above)")
# A build dir configured with an earlier default keeps it in its cache
# (CI's build/ is configured once): move it on.
set(vb_sanitize_suite_earlier
    "^(unit_bus|unit_decoder|unit_audio_io|unit_gateway|unit_session_state|unit_session|unit_tools)$"
    "^(unit_(bus|decoder|audio_io|gateway|session_state|session|tools)|integration_contract_(afe|capture|control|decoder|gateway|playback|tools|wakevad|python_wakevad|node_wakevad|node_oww_wakevad|launcher_command)|integration_coze_sim_(failures|faults|sdk|tls|types)|integration_wakevad_oww_wake)$"
    "^(unit_(bus|decoder|audio_io|gateway|session_state|session|tools)|integration_contract_[a-z_]+|integration_coze_sim_(failures|faults|sdk|tls|types)|integration_wakevad_oww_wake)$"
    "^(unit_(bus|decoder|audio_io|gateway|session_state|session|tools)|integration_bus|integration_contract_[a-z_]+|integration_coze_sim_(failures|faults|sdk|tls|types)|integration_wakevad_oww_wake)$"
    "^(unit_(bus|decoder|audio_io|gateway|session_state|session|tools)|integration_(bus|session|session_continuity|launcher|cli)|integration_contract_[a-z_]+|integration_coze_sim_(failures|faults|sdk|tls|types)|integration_wakevad_oww_wake)$")
if(VB_SANITIZE_SUITE IN_LIST vb_sanitize_suite_earlier)
  set_property(CACHE VB_SANITIZE_SUITE PROPERTY VALUE "${vb_sanitize_suite_default}")
endif()
# Is test `t` in the ASan+UBSan suite? (VB_SANITIZE_SUITE, less vb_release_only)
function(vb_in_sanitize_suite t out)
  if(t MATCHES "${VB_SANITIZE_SUITE}" AND NOT t MATCHES "${vb_sanitize_exclude}")
    set(${out} ON PARENT_SCOPE)
  else()
    set(${out} OFF PARENT_SCOPE)
  endif()
endfunction()
# The integration tests start the programs and mostly wait on them: under
# ASan+UBSan they take about as long (coze_sim sdk/faults/failures: 12.6/9.5/
# 8.1 s against 12.9/8.7/9.9 s, one sitting). They and the unit tests run
# once, in build/asan, not also in build/ (the e2e tests run the release
# binaries). ON: both.
option(VB_PLAIN_INTEGRATION "run the unit and integration tests in build/ as well as under ASan+UBSan" OFF)
# Two at a time: they mostly wait on the programs they start (one at a time:
# 8 min 19 s wall for 5 min 17 s of CPU, quiet machine); two at a time beside
# two busy loops on 2 cores: 318 and 307 s, both runs passed (2026-12-07).
set(VB_SANITIZE_JOBS 2 CACHE STRING "ctest -j of the ASan+UBSan tree's tests")
set(VB_TSAN_SUITE "^(unit|integration)_(session|gateway|coze_sim)"
    CACHE STRING "ctest regex of the tests the TSan tree runs")
# The programs those integration tests start (the rest of the tree is not
# built in build/tsan): the suite's folders' own programs come on top.
set(vb_tsan_products vb,vb-broker,vb-cozesim,vb-session,vb-control,vb-wakevad,vb-gateway)
set(VB_SANITIZE_PRODUCTS "" CACHE STRING
    "programs (comma-separated) a sanitizer tree's integration tests start; empty = every actor, vb, vb-broker, vb-sniff, vb-cozesim, vb-tune")

# In a sanitizer tree: vb_sanitize_suite builds the tests VB_SANITIZE_SUITE
# selects and every program they start (nothing else: no benches, no e2e), so
# the tree builds no more than it runs. For each selected test: its target,
# the targets it depends on, every program of its test folder (helper actors,
# fakes); for integration tests also the product programs they start by
# name (VB_SANITIZE_PRODUCTS, else every actor, vb, vb-broker, vb-sniff,
# vb-cozesim, vb-tune).
function(vb_add_sanitize_suite)
  add_custom_target(vb_sanitize_suite)
  set(dirs ${CMAKE_SOURCE_DIR})
  set(wants_products OFF)
  while(dirs)
    list(POP_FRONT dirs dir)
    get_property(sub DIRECTORY ${dir} PROPERTY SUBDIRECTORIES)
    list(APPEND dirs ${sub})
    get_property(tests DIRECTORY ${dir} PROPERTY TESTS)
    set(selected OFF)
    foreach(t ${tests})
      vb_in_sanitize_suite(${t} in_suite)
      if(NOT in_suite)
        continue()
      endif()
      set(selected ON)
      if(t MATCHES "^(integration|e2e)_")
        set(wants_products ON)
      endif()
      if(TARGET ${t})
        add_dependencies(vb_sanitize_suite ${t})
      endif()
    endforeach()
    if(selected)  # the folder's own programs (vb-probe, vb-gw-fake-session, …)
      get_property(targets DIRECTORY ${dir} PROPERTY BUILDSYSTEM_TARGETS)
      foreach(t ${targets})
        get_target_property(type ${t} TYPE)
        if(type STREQUAL "EXECUTABLE")
          add_dependencies(vb_sanitize_suite ${t})
        endif()
      endforeach()
    endif()
  endwhile()
  if(wants_products)
    get_property(products GLOBAL PROPERTY VB_ACTOR_BINARIES)
    list(APPEND products vb vb-broker vb-sniff vb-cozesim vb-tune)
    if(VB_SANITIZE_PRODUCTS)
      string(REPLACE "," ";" products "${VB_SANITIZE_PRODUCTS}")
    endif()
    # …and what they read at run time: the generated Python modules of the
    # Python actors the contract tests start (sdk/python).
    list(APPEND products sdk_python_protos)
    foreach(bin ${products})
      if(TARGET ${bin})
        add_dependencies(vb_sanitize_suite ${bin})
      endif()
    endforeach()
  endif()
endfunction()

if(VB_SANITIZE AND VB_BUILD_TESTS)
  vb_add_sanitize_suite()
endif()

if(NOT VB_CHECK_TREES OR VB_SANITIZE OR VB_FUZZ OR NOT VB_BUILD_TESTS)
  file(REMOVE ${CMAKE_BINARY_DIR}/CTestCustom.cmake)  # the list below, from an earlier configure
  return()
endif()

set(vb_asan_dir ${CMAKE_BINARY_DIR}/asan)
set(vb_tsan_dir ${CMAKE_BINARY_DIR}/tsan)
# -O1 -g1: the sanitizers' usual optimisation (fast enough to run the
# integration tests, cheap to compile), line tables for the reports' stacks.
set(vb_tree_args -G ${CMAKE_GENERATOR} -DCMAKE_BUILD_TYPE=RelWithDebInfo
    "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1" "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O1 -g1"
    -DVB_UNITY_BUILD=${VB_UNITY_BUILD})
if(CMAKE_CXX_COMPILER_LAUNCHER)
  list(APPEND vb_tree_args -DCMAKE_CXX_COMPILER_LAUNCHER=${CMAKE_CXX_COMPILER_LAUNCHER}
                           -DCMAKE_C_COMPILER_LAUNCHER=${CMAKE_C_COMPILER_LAUNCHER})
endif()

find_program(VB_CLANGXX NAMES clang++ clang++-14)
find_program(VB_CLANG NAMES clang clang-14)
set(vb_asan_targets vb_sanitize_suite)
set(vb_tsan_args "")
if(VB_CLANGXX AND VB_CLANG)
  # clang for TSan too: it compiles this code faster than GCC.
  set(vb_tsan_args -DCMAKE_C_COMPILER=${VB_CLANG} -DCMAKE_CXX_COMPILER=${VB_CLANGXX})
  # One clang tree: ASan+UBSan for the tests, plus libFuzzer's coverage for
  # the fuzz targets (VB_FUZZ implies address,undefined).
  set(vb_asan_args -DCMAKE_C_COMPILER=${VB_CLANG} -DCMAKE_CXX_COMPILER=${VB_CLANGXX} -DVB_FUZZ=ON)
  list(APPEND vb_asan_targets vb_fuzz_targets)
else()
  message(STATUS "clang not found: ASan+UBSan tree with ${CMAKE_CXX_COMPILER_ID}, no fuzz_* ctest "
                 "entries (tools/bootstrap.sh installs clang)")
  set(vb_asan_args -DVB_FUZZ=OFF)
endif()

add_custom_target(vb_check_trees
  COMMAND ${CMAKE_COMMAND} -S ${CMAKE_SOURCE_DIR} -B ${vb_asan_dir} ${vb_tree_args} ${vb_asan_args}
          -DVB_SANITIZE=address,undefined "-DVB_SANITIZE_SUITE=${VB_SANITIZE_SUITE}"
  COMMAND ${CMAKE_COMMAND} --build ${vb_asan_dir} --target ${vb_asan_targets}
  USES_TERMINAL VERBATIM
  COMMENT "Building the ASan+UBSan tree with the fuzz targets (build/asan)")

add_custom_target(vb_check_tsan
  COMMAND ${CMAKE_COMMAND} -S ${CMAKE_SOURCE_DIR} -B ${vb_tsan_dir} ${vb_tree_args} ${vb_tsan_args}
          -DVB_SANITIZE=thread "-DVB_SANITIZE_SUITE=${VB_TSAN_SUITE}" "-DVB_SANITIZE_PRODUCTS=${vb_tsan_products}"
  COMMAND ${CMAKE_COMMAND} --build ${vb_tsan_dir} --target vb_sanitize_suite
  USES_TERMINAL VERBATIM
  COMMENT "Building the TSan tree (build/tsan)")

if(VB_CLANGXX AND VB_CLANG)
  include(${CMAKE_SOURCE_DIR}/tests/fuzz/targets.cmake)
  foreach(name ${VB_FUZZ_TARGETS})
    vb_add_fuzz_run(${name} ${vb_asan_dir}/bin/fuzz_${name})
  endforeach()
endif()

add_test(NAME sanitize_asan_ubsan
  COMMAND ${CMAKE_COMMAND} -DTREE=${vb_asan_dir} -DREGEX=${VB_SANITIZE_SUITE} -DEXCLUDE=${vb_sanitize_exclude}
          -DJOBS=${VB_SANITIZE_JOBS}
          -DLOGS=${CMAKE_BINARY_DIR}/sanitizer-logs/asan -DSUPP=${CMAKE_SOURCE_DIR}/cmake/lsan.supp
          -P ${CMAKE_SOURCE_DIR}/cmake/run_sanitized.cmake)
set_tests_properties(sanitize_asan_ubsan PROPERTIES LABELS sanitize TIMEOUT 2400)

add_test(NAME sanitize_tsan
  COMMAND ${CMAKE_COMMAND} -DTREE=${vb_tsan_dir} -DREGEX=${VB_TSAN_SUITE}
          -DLOGS=${CMAKE_BINARY_DIR}/sanitizer-logs/tsan -DSUPP=${CMAKE_SOURCE_DIR}/cmake/tsan.supp
          -DSKIP_IF_MISSING=ON -P ${CMAKE_SOURCE_DIR}/cmake/run_sanitized.cmake)
set_tests_properties(sanitize_tsan PROPERTIES LABELS sanitize TIMEOUT 2400
                     SKIP_REGULAR_EXPRESSION "no sanitizer tree in")

# The unit and integration tests of build/ that sanitize_asan_ubsan runs: left out
# here (CTEST_CUSTOM_TESTS_IGNORE in build/CTestCustom.cmake, which ctest
# reads), so CI runs each once. `ctest -R` in build/ does not list them;
# build/asan has them (or configure with -DVB_PLAIN_INTEGRATION=ON).
set(vb_ignored "")
if(NOT VB_PLAIN_INTEGRATION)
  set(dirs ${CMAKE_SOURCE_DIR}/tests)
  while(dirs)
    list(POP_FRONT dirs dir)
    get_property(sub DIRECTORY ${dir} PROPERTY SUBDIRECTORIES)
    list(APPEND dirs ${sub})
    get_property(tests DIRECTORY ${dir} PROPERTY TESTS)
    foreach(t ${tests})
      vb_in_sanitize_suite(${t} in_suite)
      if(t MATCHES "^(unit|integration)_" AND in_suite)
        list(APPEND vb_ignored ${t})
        # …and not built by default here either: build/asan builds and runs
        # it (`cmake --build build --target ${t}` still builds it here).
        if(TARGET ${t})
          set_target_properties(${t} PROPERTIES EXCLUDE_FROM_ALL ON)
        endif()
      endif()
    endforeach()
  endwhile()
endif()
list(JOIN vb_ignored "\n  " vb_ignored)
file(CONFIGURE OUTPUT ${CMAKE_BINARY_DIR}/CTestCustom.cmake CONTENT
"# Generated by cmake/check_trees.cmake: tests that run only under ASan+UBSan
# (sanitize_asan_ubsan runs them in build/asan).
list(APPEND CTEST_CUSTOM_TESTS_IGNORE\n  ${vb_ignored})\n")

# format_check: every C++ source follows .clang-format (tools/format-check.sh);
# CI checks it (the bootstrap installs clang-format).
option(VB_CHECK_FORMAT "ctest entry format_check (tools/format-check.sh)" ON)
find_program(VB_CLANG_FORMAT NAMES clang-format clang-format-14)
if(VB_CHECK_FORMAT AND NOT VB_CLANG_FORMAT)
  message(WARNING "VB_CHECK_FORMAT: clang-format not found, no format_check (apt-get install clang-format)")
endif()
if(VB_CHECK_FORMAT AND VB_CLANG_FORMAT)
  add_test(NAME format_check COMMAND ${CMAKE_SOURCE_DIR}/tools/format-check.sh)
  set_tests_properties(format_check PROPERTIES LABELS build TIMEOUT 600)
endif()

if(CMAKE_GENERATOR STREQUAL "Ninja")  # the check reads build.ninja
add_test(NAME build_product_only
  COMMAND ${CMAKE_COMMAND} -DSRC=${CMAKE_SOURCE_DIR} -DDIR=${CMAKE_BINARY_DIR}/product-only
          -DMAIN=${CMAKE_BINARY_DIR} -DGENERATOR=${CMAKE_GENERATOR}
          -P ${CMAKE_SOURCE_DIR}/cmake/check_product_only.cmake)
set_tests_properties(build_product_only PROPERTIES LABELS build TIMEOUT 300)
endif()
