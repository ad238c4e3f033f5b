# One shape for every actor: a logic library that links neither the bus nor
# ZeroMQ, a thin adapter (the bus::Actor), and the generated main.
#
#   include(${CMAKE_SOURCE_DIR}/cmake/logic_check.cmake)
#   vb_logic_library(vb-capture vb_capture_logic)   in the actor's CMakeLists.txt
#   vb_no_bus_library(vb_base)                      a shared bus-free library
#
# Two checks, both failing the build:
#   - at configure time, each registered logic library's link graph (its
#     LINK_LIBRARIES and INTERFACE_LINK_LIBRARIES, transitively) must not
#     reach vb_bus, PkgConfig::ZMQ, cppzmq or libzmq: CMake stops with an
#     error naming the path;
#   - the ctest build_logic_no_bus (cmake/logic_symbols.cmake) reads each
#     logic archive's undefined symbols with nm: one from the bus runtime
#     (vb::bus::…) or ZeroMQ (zmq_…) means the logic uses the bus through a
#     header although its link line does not say so.
# Actors without a registered logic library are named in a warning.
include_guard(GLOBAL)

function(vb_logic_library actor target)
  set_property(GLOBAL APPEND PROPERTY VB_LOGIC_LIBRARIES ${target})
  set_property(GLOBAL APPEND PROPERTY VB_LOGIC_ACTORS ${actor})
endfunction()

# A shared library that must stay bus-free too (vb_base): the same checks.
function(vb_no_bus_library target)
  set_property(GLOBAL APPEND PROPERTY VB_LOGIC_LIBRARIES ${target})
endfunction()

# Is `item` (a link item) the bus or ZeroMQ?
function(_vb_is_forbidden item out)
  set(hit FALSE)
  if(item MATCHES "^(vb_bus|PkgConfig::ZMQ|cppzmq|cppzmq-static|libzmq|libzmq-static)$"
     OR item MATCHES "(^|/|-l)(lib)?zmq(\\.so|\\.a|$)")
    set(hit TRUE)
  endif()
  set(${out} ${hit} PARENT_SCOPE)
endfunction()

# Walks the link graph of `target` depth first; sets `out` to the first path
# (a;b;c) that reaches a forbidden item, or "".
function(_vb_find_bus target path out)
  set(found "")
  set(items "")
  foreach(prop LINK_LIBRARIES INTERFACE_LINK_LIBRARIES)
    get_target_property(v ${target} ${prop})
    if(v)
      list(APPEND items ${v})
    endif()
  endforeach()
  foreach(item IN LISTS items)
    # $<LINK_ONLY:x> (a static library's private dependency) is still linked.
    string(REGEX REPLACE "^\\$<LINK_ONLY:(.*)>$" "\\1" item "${item}")
    if(item MATCHES "^\\$<" OR item STREQUAL "")
      continue()
    endif()
    _vb_is_forbidden("${item}" bad)
    if(bad)
      set(found "${path};${item}")
      break()
    endif()
    if(TARGET ${item})
      get_property(seen GLOBAL PROPERTY _VB_LOGIC_SEEN)
      if(NOT "${item}" IN_LIST seen)
        set_property(GLOBAL APPEND PROPERTY _VB_LOGIC_SEEN ${item})
        _vb_find_bus(${item} "${path};${item}" sub)
        if(sub)
          set(found "${sub}")
          break()
        endif()
      endif()
    endif()
  endforeach()
  set(${out} "${found}" PARENT_SCOPE)
endfunction()

function(vb_check_logic_libraries)
  get_property(libs GLOBAL PROPERTY VB_LOGIC_LIBRARIES)
  get_property(covered GLOBAL PROPERTY VB_LOGIC_ACTORS)
  set(errors "")
  foreach(lib IN LISTS libs)
    if(NOT TARGET ${lib})
      continue()  # VB_ONLY builds leave some out
    endif()
    set_property(GLOBAL PROPERTY _VB_LOGIC_SEEN "")
    _vb_find_bus(${lib} ${lib} path)
    if(path)
      list(JOIN path " -> " shown)
      string(APPEND errors "  ${shown}\n")
    endif()
  endforeach()
  if(errors)
    message(FATAL_ERROR "An actor's logic library links the bus or ZeroMQ (cmake/logic_check.cmake); "
                        "move what needs the bus into the actor's adapter:\n${errors}")
  endif()
  get_property(actors GLOBAL PROPERTY VB_ACTOR_BINARIES)
  set(missing "")
  foreach(a IN LISTS actors)
    get_target_property(dir ${a} SOURCE_DIR)
    if(NOT a IN_LIST covered AND dir MATCHES "^${CMAKE_SOURCE_DIR}/actors/")  # not the tests' fakes
      list(APPEND missing ${a})
    endif()
  endforeach()
  if(missing)
    list(JOIN missing ", " shown)
    message(WARNING "Actors without a bus-free logic library (cmake/logic_check.cmake): ${shown}")
  endif()
  # The symbol check: after the build, on the archives themselves.
  if(VB_BUILD_TESTS AND libs)
    set(files "")
    foreach(lib IN LISTS libs)
      if(TARGET ${lib})
        list(APPEND files "$<TARGET_FILE:${lib}>")
      endif()
    endforeach()
    list(JOIN files "|" joined)
    add_test(NAME build_logic_no_bus
             COMMAND ${CMAKE_COMMAND} "-DLIBS=${joined}" -DNM=${CMAKE_NM}
                     -P ${CMAKE_SOURCE_DIR}/cmake/logic_symbols.cmake)
    set_tests_properties(build_logic_no_bus PROPERTIES LABELS "unit;build" TIMEOUT 60)
  endif()
endfunction()

cmake_language(DEFER DIRECTORY ${CMAKE_SOURCE_DIR} CALL vb_check_logic_libraries)
