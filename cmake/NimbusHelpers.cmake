# nimbus_library(NAME SRCS ... DEPS ...): one static library per subsystem. The DEPS
# list is the subsystem's allowed dependencies, so the layering of ARCHITECTURE.md is
# enforced by the linker.
function(nimbus_library NAME)
  cmake_parse_arguments(ARG "" "" "SRCS;DEPS" ${ARGN})
  add_library(${NAME} STATIC ${ARG_SRCS})
  target_include_directories(${NAME} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(${NAME} PUBLIC ${ARG_DEPS})
endfunction()

# nimbus_test(NAME SRCS ... DEPS ...): a GoogleTest binary registered with CTest.
function(nimbus_test NAME)
  cmake_parse_arguments(ARG "" "" "SRCS;DEPS" ${ARGN})
  add_executable(${NAME} ${ARG_SRCS})
  target_link_libraries(${NAME} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gtest_main GTest::gmock)
  gtest_discover_tests(${NAME} DISCOVERY_TIMEOUT 60 PROPERTIES LABELS unit)
endfunction()
