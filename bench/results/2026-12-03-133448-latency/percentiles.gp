set terminal pngcairo size 900,480 font ",10"
set output 'percentiles.png'
set title 'wharfd frame://, wharf bench -t1, 64 B: latency by percentile'
set logscale x
set xrange [1:*]
set xtics ("0%%" 1, "90%%" 10, "99%%" 100, "99.9%%" 1000, "99.99%%" 10000, "99.999%%" 100000)
set xlabel 'percentile'
set ylabel 'latency (ms)'
set grid
set key top left
plot 'percentiles.0.dat' using 1:2 with lines lw 2 title '10 connections', 'percentiles.1.dat' using 1:2 with lines lw 2 title '100 connections', 'percentiles.2.dat' using 1:2 with lines lw 2 title '1000 connections'
