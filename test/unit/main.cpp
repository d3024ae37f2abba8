// The one Catch2 main for all unit and namespace test programs; run them with
// "-r tap" for TAP output (the test runner does).
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
#include <catch2/catch_reporter_tap.hpp>
