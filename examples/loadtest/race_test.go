//go:build race

package main

// raceEnabled: the test runs with -race, and so does the server it builds.
const raceEnabled = true
