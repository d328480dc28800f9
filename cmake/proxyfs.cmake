# Build helpers shared by every module.
#
#   pfs_library(NAME SOURCES a.c b.c LINKS dep1 dep2)
#       a static library; its folder is the public include directory.
#   pfs_executable(NAME SOURCES main.c LINKS lib1 lib2)
#   pfs_unit_test(NAME SOURCES test.c LINKS lib1 [LABELS extra])
#       a cmocka test registered with ctest under the label "unit"
#       (the sanitizer run executes exactly this label).
#   pfs_fuzz_target(NAME SOURCE fuzz.c LINKS lib1)
#       a libFuzzer target, built only with -DPFS_FUZZ=ON; its seed corpus
#       is tests/fuzz/corpus/NAME/ (scripts/test.sh runs each one briefly).

find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
pkg_check_modules(JANSSON REQUIRED IMPORTED_TARGET jansson)
pkg_check_modules(MHD REQUIRED IMPORTED_TARGET libmicrohttpd)
pkg_check_modules(CMOCKA REQUIRED IMPORTED_TARGET cmocka)
pkg_check_modules(CURL IMPORTED_TARGET libcurl)
pkg_check_modules(FUSE3 IMPORTED_TARGET fuse3)
pkg_check_modules(LMDB IMPORTED_TARGET lmdb)
find_package(OpenSSL)

set(PFS_WARNINGS -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes
    -Wmissing-prototypes -Wno-unused-parameter)
set(PFS_DEFINES _GNU_SOURCE PFS_VERSION="${PROJECT_VERSION}")

if(PFS_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()
if(PFS_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "PFS_FUZZ needs clang (CC=clang)")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined
                      -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()

function(pfs_apply_common target)
  target_compile_options(${target} PRIVATE ${PFS_WARNINGS})
  target_compile_definitions(${target} PRIVATE ${PFS_DEFINES})
endfunction()

function(pfs_library name)
  cmake_parse_arguments(A "" "" "SOURCES;LINKS" ${ARGN})
  add_library(${name} STATIC ${A_SOURCES})
  target_include_directories(${name} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
  target_link_libraries(${name} PUBLIC ${A_LINKS})
  pfs_apply_common(${name})
endfunction()

function(pfs_executable name)
  cmake_parse_arguments(A "" "" "SOURCES;LINKS" ${ARGN})
  add_executable(${name} ${A_SOURCES})
  target_link_libraries(${name} PRIVATE ${A_LINKS})
  pfs_apply_common(${name})
endfunction()

function(pfs_unit_test name)
  cmake_parse_arguments(A "" "" "SOURCES;LINKS;LABELS" ${ARGN})
  add_executable(${name} ${A_SOURCES})
  target_link_libraries(${name} PRIVATE ${A_LINKS} PkgConfig::CMOCKA)
  pfs_apply_common(${name})
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS "unit;${A_LABELS}" TIMEOUT 300
    ENVIRONMENT "PFS_SOURCE_DIR=${CMAKE_SOURCE_DIR}")
endfunction()

# A system or component test: a script or program run by ctest with the
# build and source trees in its environment. Label "system". SERIAL: the
# test runs alone (tests on the shared real Swift AIO: with one replica and
# one memcached, a starved AIO error-limits them and answers 503/401 for a
# minute).
function(pfs_system_test name)
  cmake_parse_arguments(A "SERIAL" "TIMEOUT" "COMMAND;LABELS" ${ARGN})
  if(NOT A_TIMEOUT)
    set(A_TIMEOUT 600)
  endif()
  add_test(NAME ${name} COMMAND ${A_COMMAND})
  set_tests_properties(${name} PROPERTIES LABELS "system;${A_LABELS}"
    TIMEOUT ${A_TIMEOUT}
    ENVIRONMENT "PFS_SOURCE_DIR=${CMAKE_SOURCE_DIR};PFS_BUILD_DIR=${CMAKE_BINARY_DIR}")
  if(A_SERIAL)
    set_tests_properties(${name} PROPERTIES RUN_SERIAL TRUE)
  endif()
endfunction()

function(pfs_fuzz_target name)
  cmake_parse_arguments(A "" "SOURCE" "LINKS" ${ARGN})
  if(NOT PFS_FUZZ)
    return()
  endif()
  add_executable(fuzz_${name} ${A_SOURCE})
  target_link_libraries(fuzz_${name} PRIVATE ${A_LINKS})
  target_link_options(fuzz_${name} PRIVATE -fsanitize=fuzzer)
  pfs_apply_common(fuzz_${name})
  set_target_properties(fuzz_${name} PROPERTIES
    RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/fuzz)
endfunction()
