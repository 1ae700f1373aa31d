module paddlehot

go 1.19
