package sim

import (
	"math"
	"math/rand/v2"
)

// poisson draws from Poisson(lambda): Knuth's product of uniforms for small
// means, Hörmann's transformed rejection (PTRS, as in NumPy) for large ones.
func poisson(rng *rand.Rand, lambda float64) int {
	switch {
	case lambda <= 0:
		return 0
	case lambda < 30:
		limit, p, k := math.Exp(-lambda), 1.0, 0
		for {
			p *= rng.Float64()
			if p <= limit {
				return k
			}
			k++
		}
	}
	return poissonPTRS(rng, lambda)
}

// poissonPTRS is W. Hörmann, "The transformed rejection method for
// generating Poisson random variables" (1993), for lambda ≥ 10.
func poissonPTRS(rng *rand.Rand, lambda float64) int {
	slam, loglam := math.Sqrt(lambda), math.Log(lambda)
	b := 0.931 + 2.53*slam
	a := -0.059 + 0.02483*b
	invAlpha := 1.1239 + 1.1328/(b-3.4)
	vr := 0.9277 - 3.6224/(b-2)
	for {
		u := rng.Float64() - 0.5
		v := rng.Float64()
		us := 0.5 - math.Abs(u)
		k := math.Floor((2*a/us+b)*u + lambda + 0.43)
		if us >= 0.07 && v <= vr {
			return int(k)
		}
		if k < 0 || (us < 0.013 && v > us) {
			continue
		}
		lg, _ := math.Lgamma(k + 1)
		if math.Log(v)+math.Log(invAlpha)-math.Log(a/(us*us)+b) <= -lambda+k*loglam-lg {
			return int(k)
		}
	}
}
