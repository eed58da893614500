//go:build !race

package main

// raceEnabled: the test runs without -race, and so does the server it builds.
const raceEnabled = false
