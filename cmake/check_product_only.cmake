# The product-only build (-DVB_BUILD_TESTS=OFF): configures SRC into DIR with
# GTest and Google Benchmark made unfindable, then checks its build graph:
# every product binary of the main tree MAIN (actors, vb, tools — not tests
# or benches) is there, and no link line names gtest, gmock or benchmark.
#   cmake -DSRC=. -DDIR=build/product-only -DMAIN=build -DGENERATOR=Ninja -P check_product_only.cmake
# The compilation itself is the main build's (same sources, same flags);
# building DIR for real is `cmake --build DIR`.
file(REMOVE_RECURSE ${DIR})
execute_process(COMMAND ${CMAKE_COMMAND} -S ${SRC} -B ${DIR} -G ${GENERATOR} -DVB_BUILD_TESTS=OFF
                        -DCMAKE_DISABLE_FIND_PACKAGE_GTest=ON -DCMAKE_DISABLE_FIND_PACKAGE_benchmark=ON
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "product-only configure failed:\n${out}\n${err}")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${DIR} -- -n -v
                RESULT_VARIABLE rc OUTPUT_VARIABLE plan ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "product-only build graph is broken:\n${err}")
endif()
if(plan MATCHES "(lib)?(gtest|gmock|benchmark)[a-z_]*\\.(a|so)|-l(gtest|gmock|benchmark)")
  message(FATAL_ERROR "the product-only build links a test library: ${CMAKE_MATCH_0}")
endif()
# Product binaries of the main tree: executables whose sources are not
# under tests/ or bench/ (read off its build.ninja).
file(STRINGS ${MAIN}/build.ninja links REGEX "^build bin/[^:]+: CXX_EXECUTABLE_LINKER")
set(bins "")
set(missing "")
foreach(l ${links})
  if(NOT l MATCHES "^build bin/([^:]+): [^ ]+ ([^ ]+)")
    continue()
  endif()
  set(b ${CMAKE_MATCH_1})
  if(CMAKE_MATCH_2 MATCHES "^(tests|bench)/")
    continue()
  endif()
  list(APPEND bins ${b})
  string(FIND "${plan}" "-o bin/${b} " at)
  if(at EQUAL -1)
    list(APPEND missing ${b})
  endif()
endforeach()
if(NOT bins)
  message(FATAL_ERROR "no product binary found in ${MAIN}/build.ninja")
endif()
if(missing)
  message(FATAL_ERROR "the product-only build lacks: ${missing}")
endif()
list(LENGTH bins n)
message("product-only build: configures without GTest/benchmark; ${n} product binaries (${bins}), no test library linked")
