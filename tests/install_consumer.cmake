# Installs the build in BUILD_DIR to a fresh prefix, checks that the prefix
# holds only the public API, the library, the CMake package, corobtree.pc,
# the corobtree tool and (with EXPECT_ASIO) corobtree-server, then builds and
# runs the consumer project in SOURCE_DIR against it twice: with
# find_package(corobtree) and with pkg-config; with EXPECT_ASIO, also its
# consumer_asio (corobtree::asio) in the CMake mode.
file(REMOVE_RECURSE "${WORK_DIR}")
set(prefix "${WORK_DIR}/prefix")
execute_process(COMMAND ${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${prefix}"
  RESULT_VARIABLE rc OUTPUT_QUIET)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cmake --install failed: ${rc}")
endif()

file(GLOB_RECURSE installed RELATIVE "${prefix}" "${prefix}/*")
foreach(f IN LISTS installed)
  if(f MATCHES "^include/corobtree/[a-z_]+\\.h$"
     OR f MATCHES "^lib[^/]*/libcorobtree\\.(a|so(\\.[0-9]+)*)$"
     OR f MATCHES "^lib[^/]*/cmake/corobtree/corobtree(Config|ConfigVersion|Targets|Targets-[a-z]+)\\.cmake$"
     OR f MATCHES "^lib[^/]*/pkgconfig/corobtree\\.pc$"
     OR f STREQUAL "bin/corobtree"
     OR (EXPECT_ASIO AND f STREQUAL "bin/corobtree-server"))
    continue()
  endif()
  message(FATAL_ERROR "the install prefix holds an unexpected file: ${f}")
endforeach()
set(expected include/corobtree/database.h include/corobtree/version.h bin/corobtree)
if(EXPECT_ASIO)
  list(APPEND expected include/corobtree/asio.h bin/corobtree-server)
endif()
foreach(f IN LISTS expected)
  if(NOT EXISTS "${prefix}/${f}")
    message(FATAL_ERROR "the install prefix lacks ${f}")
  endif()
endforeach()
# No installed header may include anything but the standard library and corobtree/.
file(GLOB headers "${prefix}/include/corobtree/*.h")
foreach(h IN LISTS headers)
  file(STRINGS "${h}" includes REGEX "^#include")
  foreach(line IN LISTS includes)
    # corobtree/asio.h is the Asio adapter: it includes Asio itself (and
    # POSIX's unistd.h, to close a descriptor Asio refused).
    if(h MATCHES "/asio\\.h$" AND (line STREQUAL "#include <asio.hpp>"
                                    OR line STREQUAL "#include <unistd.h>"))
      continue()
    endif()
    if(NOT line MATCHES "^#include <(corobtree/[a-z_]+\\.h|[a-z_]+)>$")
      message(FATAL_ERROR "${h} includes something outside the API: ${line}")
    endif()
  endforeach()
endforeach()

foreach(mode cmake pkgconfig)
  set(build "${WORK_DIR}/build-${mode}")
  if(mode STREQUAL "pkgconfig")
    set(ENV{PKG_CONFIG_PATH} "${prefix}/lib/pkgconfig:${prefix}/lib64/pkgconfig")
    set(use_pc ON)
  else()
    set(use_pc OFF)
  endif()
  execute_process(COMMAND ${CMAKE_COMMAND} -S "${SOURCE_DIR}" -B "${build}"
    -DCMAKE_PREFIX_PATH=${prefix}
    -DUSE_PKG_CONFIG=${use_pc}
    -DCMAKE_CXX_COMPILER=${CXX_COMPILER}
    "-DCMAKE_CXX_FLAGS=${CXX_FLAGS}"
    "-DCMAKE_EXE_LINKER_FLAGS=${LINKER_FLAGS}"
    RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "configuring the consumer (${mode}) against ${prefix} failed: ${rc}")
  endif()
  execute_process(COMMAND ${CMAKE_COMMAND} --build "${build}" RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "building the consumer (${mode}) failed: ${rc}")
  endif()
  file(REMOVE "${WORK_DIR}/consumer-${mode}.db" "${WORK_DIR}/consumer-${mode}.db-wal")
  set(ENV{LD_LIBRARY_PATH} "${prefix}/lib:${prefix}/lib64")
  execute_process(COMMAND "${build}/consumer" "${WORK_DIR}/consumer-${mode}.db"
    RESULT_VARIABLE rc OUTPUT_VARIABLE out)
  message(STATUS "consumer (${mode}) said: ${out}")
  if(NOT rc EQUAL 0 OR NOT out MATCHES "consumer ok")
    message(FATAL_ERROR "the consumer (${mode}) failed: ${rc}")
  endif()
  # The Asio adapter: when the build had corobtree::asio (CMake only).
  if(mode STREQUAL "cmake" AND EXPECT_ASIO)
    file(REMOVE "${WORK_DIR}/consumer-asio.db" "${WORK_DIR}/consumer-asio.db-wal")
    execute_process(COMMAND "${build}/consumer_asio" "${WORK_DIR}/consumer-asio.db"
      RESULT_VARIABLE rc OUTPUT_VARIABLE out)
    message(STATUS "consumer_asio said: ${out}")
    if(NOT rc EQUAL 0 OR NOT out MATCHES "consumer asio ok")
      message(FATAL_ERROR "consumer_asio failed: ${rc}")
    endif()
  endif()
endforeach()
